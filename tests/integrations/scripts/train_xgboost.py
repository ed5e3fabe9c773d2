"""Tiny XGBoost trainings (CPU) with whirr's callback; prints one JSON line: the run's
id and XGBoost's own record of the evaluations, for the test to compare with.

Modes: ``train`` (xgboost.train, two evaluation sets, early stopping watching the last),
``cv`` (xgboost.cv: means and standard deviations)."""

import json
import sys

import numpy as np
import xgboost

from whirr.integrations.xgboost import WhirrCallback

mode = sys.argv[1]
rng = np.random.default_rng(0)
x = rng.random((80, 3))
y = x @ np.array([1.0, 2.0, 3.0])
train = xgboost.DMatrix(x[:60], label=y[:60])
valid = xgboost.DMatrix(x[60:], label=y[60:])
params = {"objective": "reg:squarederror", "max_depth": 2, "eta": 0.3, "nthread": 1}
callback = WhirrCallback(config=params, name=f"xgb-{mode}", system_metrics=False, capture_pip=False)
out: dict = {}
if mode == "train":
    record: dict = {}
    booster = xgboost.train(
        params,
        train,
        4,
        evals=[(train, "train"), (valid, "valid")],
        evals_result=record,
        early_stopping_rounds=2,
        verbose_eval=False,
        callbacks=[callback],
    )
    out = {"record": record, "best_iteration": booster.best_iteration}
    out["best_score"] = booster.best_score
else:
    frame = xgboost.cv(params, train, 3, nfold=3, seed=0, callbacks=[callback], as_pandas=False)
    out = {"record": frame}
print(json.dumps({"run_id": callback.run.run_id, "status": callback.run.status, **out}))
