"""A LightGBM callback that logs boosting rounds to a whirr run.

```python
from whirr.integrations.lightgbm import WhirrCallback

whirr_cb = WhirrCallback()
booster = lightgbm.train(params, train_set, 100, valid_sets=[train_set, valid_set],
                         valid_names=["train", "valid"],
                         callbacks=[whirr_cb, lightgbm.early_stopping(10)])
whirr_cb.end(booster)  # best_iteration/best_score into the summary; ends the run
```

Each round is one row at ``step=`` LightGBM's iteration (0 first), one key per
validation set and metric: ``train/l2``, ``valid/l2`` (with ``lightgbm.cv``: the mean,
and ``.../std``). The config is the ``params`` LightGBM trains with (``num_iterations``
included), then the ``config`` given. The summary holds the last round's values and
``rounds``; ``end(booster)`` adds ``best_iteration`` and ``best_score/<set>/<metric>``.

LightGBM tells a callback nothing when training stops early, so the callback writes the
summary at the last scheduled round and otherwise needs ``end(booster)``; a run it
started and nobody ended ends when the process exits (``completed``, or ``failed`` on an
uncaught exception).
"""

from __future__ import annotations

from typing import Any

from whirr.integrations._common import RunHandle, require, scalars

require("lightgbm", "lightgbm", "lightgbm")

__all__ = ["WhirrCallback"]


class WhirrCallback:
    """Log each boosting round of ``lightgbm.train`` to a whirr run.

    ``run``: a run from ``whirr.init()`` to log to (``end()`` leaves it open). Without
    it, the callback starts a run at the first round (``init_kwargs`` go to
    ``whirr.init``), inside a worker's job the job's run.
    """

    #: LightGBM calls callbacks by ``order``: before ``early_stopping`` (30), whose
    #: exception would otherwise skip the round it stops at.
    order = 25
    before_iteration = False

    def __init__(self, run: Any = None, config: Any = None, **init_kwargs: Any) -> None:
        self._handle = RunHandle(run, config, init_kwargs)
        self._rounds = 0

    @property
    def run(self) -> Any:
        """The whirr run being logged to (None before the first round)."""
        return self._handle.run

    def __call__(self, env: Any) -> None:
        if env.iteration == env.begin_iteration:
            self._rounds = 0
            self._handle.start(scalars(env.params))
        row: dict[str, Any] = {}
        for result in env.evaluation_result_list or ():
            # (set, metric, value, higher_is_better[, std under lightgbm.cv])
            data, metric, value = result[0], result[1], result[2]
            if data == "cv_agg" and " " in metric:  # LightGBM 3: ("cv_agg", "valid l2", ...)
                data, metric = metric.split(" ", 1)
            row[f"{data}/{metric}"] = value
            if len(result) > 4 and result[4] is not None:
                row[f"{data}/{metric}/std"] = result[4]
        self._rounds += 1
        self._handle.log(row, step=int(env.iteration))
        if env.iteration == env.end_iteration - 1:  # the last scheduled round
            self._handle.summarize({"rounds": self._rounds})

    def end(self, booster: Any = None) -> None:
        """Training is over: add ``booster``'s best iteration and scores to the summary,
        and finish the run when this callback started it."""
        extra: dict[str, Any] = {"rounds": self._rounds}
        if booster is not None:
            best = getattr(booster, "best_iteration", 0)
            if best:  # LightGBM's 0 means "no early stopping"
                extra["best_iteration"] = best
            for data, scores in (getattr(booster, "best_score", None) or {}).items():
                for metric, value in scores.items():
                    extra[f"best_score/{data}/{metric}"] = value
        self._handle.summarize(extra)
        self._handle.finish()
