"""A PyTorch Lightning logger that logs a ``Trainer`` to a whirr run.

```python
from whirr.integrations.lightning import WhirrLogger

trainer = lightning.Trainer(max_epochs=10, logger=WhirrLogger(tags=["lightning"]))
trainer.fit(model, train_loader, val_loader)   # self.log(...) calls and save_hyperparameters()
trainer.test(model, test_loader)               # logged to the same run
```

Works with ``lightning`` (``lightning.pytorch``) and with ``pytorch_lightning``.
``log_metrics`` writes one row at Lightning's ``step``; ``log_hyperparams`` (the module's
``save_hyperparameters()``, nested dicts flattened with ``/``) becomes the run's config:
the run starts at the first metric, with every hyperparameter logged before it. The
summary holds the last value of each metric, written when Lightning finalizes a ``fit``,
``validate`` or ``test``. Only rank zero logs.

The run the logger starts stays open across ``fit`` and ``test``: it ends when the
process exits (``completed``, ``failed`` on an uncaught exception), or when you call
``finish()``.
"""

from __future__ import annotations

import importlib
import warnings
from collections.abc import Mapping
from typing import Any

from whirr.integrations._common import RunHandle, require, scalars

try:
    pl = importlib.import_module("pytorch_lightning")  # the older standalone package
except ImportError:
    pl = require("lightning.pytorch", "lightning", "lightning")

#: Typed Any: mypy does not see into a module imported by name.
Logger: Any = pl.loggers.Logger
rank_zero_only = pl.utilities.rank_zero_only
rank_zero_experiment = pl.loggers.logger.rank_zero_experiment

__all__ = ["WhirrLogger"]


class WhirrLogger(Logger):
    """Log a Lightning ``Trainer`` to a whirr run.

    ``run``: a run from ``whirr.init()`` to log to. Without it, the logger starts a run at
    the first metric (``init_kwargs`` go to ``whirr.init``: ``name``, ``tags``, ...),
    inside a worker's job the job's run.
    """

    def __init__(self, run: Any = None, config: Any = None, **init_kwargs: Any) -> None:
        super().__init__()
        self._handle = RunHandle(run, config, init_kwargs)
        self._hparams: dict[str, Any] = {}

    @property
    def name(self) -> str:
        return "whirr"

    @property
    def version(self) -> str | None:
        """The run's id once it has started."""
        return None if self._handle.run is None else str(self._handle.run.run_id)

    @property
    @rank_zero_experiment
    def experiment(self) -> Any:
        """The whirr run; before the first metric, a stand-in that starts it when used
        (Lightning reads ``experiment`` at setup, before it logs the hyperparameters
        that make the run's config)."""
        return self._handle.run or _RunOnFirstUse(self)

    def start(self) -> Any:
        """Start the run now (with the hyperparameters logged so far) if it has not."""
        return self._handle.start(self._hparams)

    @property
    def run(self) -> Any:
        """The whirr run being logged to (None before the first metric)."""
        return self._handle.run

    @rank_zero_only
    def log_hyperparams(self, params: Any, *args: Any, **kwargs: Any) -> None:
        if params is not None and not isinstance(params, Mapping):
            params = vars(params)  # argparse.Namespace
        flat = scalars(flatten(params or {}))
        if self._handle.run is None:
            self._hparams.update(flat)
            return
        # Lightning logs them again at each fit/test; only new values are news. A run's
        # config is set when it starts: say so rather than drop them quietly.
        late = sorted(k for k, v in flat.items() if k not in self._hparams or self._hparams[k] != v)
        if late:
            warnings.warn(
                "whirr: hyperparameters logged after the run started are not in its config: "
                f"{late}",
                stacklevel=2,
            )

    @rank_zero_only
    def log_metrics(self, metrics: Mapping[str, Any], step: int | None = None) -> None:
        self.start()
        self._handle.log(metrics, step=None if step is None else int(step))

    @rank_zero_only
    def finalize(self, status: str) -> None:
        self._handle.summarize()

    def finish(self) -> None:
        """Write the summary and finish the run, when this logger started it."""
        self._handle.summarize()
        self._handle.finish()


class _RunOnFirstUse:
    """Stands for the logger's run until it starts: using it starts it."""

    def __init__(self, logger: WhirrLogger) -> None:
        self._logger = logger

    def __getattr__(self, name: str) -> Any:
        return getattr(self._logger.start(), name)


def flatten(values: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """Nested mappings as one level, their keys joined with ``/``."""
    out: dict[str, Any] = {}
    for key, value in values.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping):
            out.update(flatten(value, f"{name}/"))
        else:
            out[name] = value
    return out
