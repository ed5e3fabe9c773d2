"""Tiny LightGBM trainings (CPU) with whirr's callback; prints one JSON line: the run's
id and LightGBM's own record of the evaluations, for the test to compare with.

Modes: ``plain`` (every scheduled round, no ``end()``: the run ends with the process),
``early`` (a validation set that early stopping gives up on, then ``end(booster)``),
``cv`` (lightgbm.cv: means and standard deviations, then ``end()``)."""

import json
import sys

import lightgbm
import numpy as np

from whirr.integrations.lightgbm import WhirrCallback

mode = sys.argv[1]
rng = np.random.default_rng(0)
x = rng.random((200, 3))
y = x @ np.array([1.0, 2.0, 3.0])
noise = rng.random(50) * 10  # labels unrelated to x: the validation loss soon worsens
train = lightgbm.Dataset(x[:150], y[:150])
valid = lightgbm.Dataset(x[150:], noise if mode == "early" else y[150:], reference=train)
params = {"objective": "regression", "num_leaves": 4, "learning_rate": 0.3, "verbose": -1}
params["num_threads"] = 1
callback = WhirrCallback(config={"data": "tiny"}, name=f"lgb-{mode}", system_metrics=False)
if mode == "cv":
    folds = lightgbm.Dataset(x, y)
    result = lightgbm.cv(params, folds, 3, nfold=3, stratified=False, callbacks=[callback])
    callback.end()
    print(json.dumps({"run_id": callback.run.run_id, "status": callback.run.status, **result}))
    sys.exit(0)
record: dict = {}
callbacks = [callback, lightgbm.record_evaluation(record)]
if mode == "early":
    callbacks.append(lightgbm.early_stopping(2, verbose=False))
booster = lightgbm.train(
    params,
    train,
    20 if mode == "early" else 5,
    valid_sets=[train, valid],
    valid_names=["train", "valid"],
    callbacks=callbacks,
)
if mode == "early":
    callback.end(booster)
out = {"record": record, "best_iteration": booster.best_iteration}
out["best_score"] = {k: dict(v) for k, v in booster.best_score.items()}
print(json.dumps({"run_id": callback.run.run_id, "status": callback.run.status, **out}))
