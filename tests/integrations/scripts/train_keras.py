"""A tiny Keras fit (JAX backend, CPU) with whirr's callback; prints one JSON line:
the run's id and Keras' own History, for the test to compare the run's files with.

Modes: ``own`` (the callback starts its run), ``given`` (the script's run is passed in
and stays open after fit)."""

import json
import os
import sys

os.environ.setdefault("KERAS_BACKEND", "jax")

import keras
import numpy as np

import whirr
from whirr.integrations.keras import WhirrCallback

mode = sys.argv[1]
rng = np.random.default_rng(0)
x = rng.random((40, 3)).astype("float32")
y = x @ np.array([1.0, 2.0, 3.0], dtype="float32")
keras.utils.set_random_seed(0)
model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(4), keras.layers.Dense(1)])
model.compile(optimizer=keras.optimizers.SGD(0.01), loss="mse", metrics=["mae"])
fit = {"epochs": 3, "batch_size": 10, "validation_split": 0.25, "verbose": 0}
quiet = {"system_metrics": False, "capture_pip": False}

if mode == "given":
    with whirr.init(name="given", config={"units": 4}, **quiet) as run:
        history = model.fit(x, y, callbacks=[WhirrCallback(run=run)], **fit)
        assert run.status == "running", "the callback finished a run it did not start"
        run.log({"after_fit": 1.0}, step=3)
    run_id, status = run.run_id, run.status
else:
    callback = WhirrCallback(config={"units": 4}, name="keras-tiny", tags=["keras"], **quiet)
    history = model.fit(x, y, callbacks=[callback], **fit)
    run_id, status = callback.run.run_id, callback.run.status
print(json.dumps({"run_id": run_id, "status": status, "history": history.history}))
