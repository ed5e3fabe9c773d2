"""An XGBoost callback that logs boosting rounds to a whirr run.

```python
from whirr.integrations.xgboost import WhirrCallback

params = {"objective": "reg:squarederror", "max_depth": 4, "eta": 0.1}
booster = xgboost.train(params, dtrain, 100, evals=[(dtrain, "train"), (dvalid, "valid")],
                        callbacks=[WhirrCallback(config=params)])
```

Each round is one row at ``step=`` the round XGBoost reports (0 first; a continued
booster keeps counting), one key per evaluation set and metric: ``train/rmse``,
``valid/rmse`` (with ``xgboost.cv``: the mean, and ``.../std``). The config holds the
booster's objective, booster type and tree parameters as XGBoost reports them, then the
``config`` given (pass your ``params``: their exact values win). The summary holds the
last round's values, ``rounds``, and ``best_iteration``/``best_score`` under early
stopping.
"""

from __future__ import annotations

import json
from typing import Any

from whirr.integrations._common import RunHandle, require

xgboost = require("xgboost", "xgboost", "xgboost")
#: Typed Any: mypy does not see into a module imported by name.
_TrainingCallback: Any = xgboost.callback.TrainingCallback

__all__ = ["WhirrCallback"]


class WhirrCallback(_TrainingCallback):
    """Log each boosting round to a whirr run.

    ``run``: a run from ``whirr.init()`` to log to (it stays open after training).
    Without it, the callback starts a run when training begins (``init_kwargs`` go to
    ``whirr.init``), inside a worker's job the job's run, and finishes it when training
    ends: one training call, one run.
    """

    def __init__(self, run: Any = None, config: Any = None, **init_kwargs: Any) -> None:
        super().__init__()
        self._handle = RunHandle(run, config, init_kwargs)
        self._rounds = 0

    @property
    def run(self) -> Any:
        """The whirr run being logged to (None before training starts)."""
        return self._handle.run

    def before_training(self, model: Any) -> Any:
        self._rounds = 0
        self._handle.start(booster_config(model))
        return model

    def after_iteration(self, model: Any, epoch: int, evals_log: dict[str, Any]) -> bool:
        row: dict[str, Any] = {}
        for data, metrics in evals_log.items():
            for metric, history in metrics.items():
                if not history:
                    continue
                last = history[-1]
                if isinstance(last, tuple):  # xgboost.cv: (mean, std)
                    row[f"{data}/{metric}"], row[f"{data}/{metric}/std"] = last
                else:
                    row[f"{data}/{metric}"] = last
        self._rounds += 1
        self._handle.log(row, step=int(epoch))
        return False  # never asks XGBoost to stop

    def after_training(self, model: Any) -> Any:
        extra: dict[str, Any] = {"rounds": self._rounds}
        best = _attr(model, "best_iteration")
        if best is not None:
            extra["best_iteration"] = int(best)
            score = _attr(model, "best_score")
            if score is not None:
                extra["best_score"] = float(score)
        self._handle.summarize(extra)
        self._handle.finish()
        return model


def booster_config(model: Any) -> dict[str, Any]:
    """The objective, booster type and tree parameters of ``model`` (a Booster, or a
    sklearn estimator's), as numbers where XGBoost's config strings are numbers."""
    booster = model.get_booster() if hasattr(model, "get_booster") else model
    try:
        learner = json.loads(booster.save_config())["learner"]
    except (AttributeError, KeyError, ValueError):
        return {}
    config: dict[str, Any] = {
        "objective": learner.get("learner_train_param", {}).get("objective"),
        "booster": learner.get("learner_train_param", {}).get("booster"),
    }
    for key, text in learner.get("gradient_booster", {}).get("tree_train_param", {}).items():
        config[key] = _parsed(text)
    return {k: v for k, v in config.items() if v is not None}


def _parsed(text: Any) -> Any:
    """XGBoost's config string as an int or a float when it is one (float32 digits
    trimmed: "0.300000012" is 0.3), else the string."""
    if not isinstance(text, str):
        return text
    try:
        return int(text)
    except ValueError:
        pass
    try:
        return float(f"{float(text):.7g}")
    except ValueError:
        return text


def _attr(model: Any, name: str) -> str | None:
    try:
        value = model.attr(name)
    except AttributeError:
        return None
    return value if isinstance(value, str) else None
