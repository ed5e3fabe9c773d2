"""A Hugging Face ``TrainerCallback`` that logs a ``Trainer`` to a whirr run.

```python
from whirr.integrations.transformers import WhirrCallback

args = TrainingArguments("out", report_to="none", logging_steps=10, eval_strategy="epoch")
trainer = Trainer(model=model, args=args, train_dataset=train_ds, eval_dataset=eval_ds,
                  callbacks=[WhirrCallback(tags=["hf"])])
trainer.train()
trainer.evaluate()  # logged to the same run
```

Every ``Trainer`` log (``loss``, ``learning_rate``, ``grad_norm``, ``epoch``, ``eval_*``,
the final ``train_runtime``/``train_loss``) is one row at ``step=state.global_step``;
its numbers only. The config is ``TrainingArguments.to_dict()`` (objects as text), then the model
config's plain values under ``model/``, then the ``config`` given. When training ends the
summary gets the last value of each logged number, ``global_step`` and, when the Trainer
tracks one, ``best_metric``; a log after training (``evaluate()``) updates it. Only the
main process (``is_world_process_zero``) logs.

The run the callback starts stays open after ``train()`` (a ``Trainer`` often evaluates
or predicts next, and those logs belong to the same run): it ends when the process exits
(``completed``, ``failed`` on an uncaught exception, ``killed`` on Ctrl+C or SIGTERM), or
when you call ``finish()``. ``report_to="whirr"`` is not possible: transformers accepts only
the names of its own integrations there (see ``docs/integrations.md``).
"""

from __future__ import annotations

from typing import Any

from whirr.integrations._common import RunHandle, require, scalars

transformers = require("transformers", "transformers", "transformers")
#: Typed Any: mypy does not see into a module imported by name.
_TrainerCallback: Any = transformers.TrainerCallback

__all__ = ["WhirrCallback"]


class WhirrCallback(_TrainerCallback):
    """Log a ``Trainer``'s logs to a whirr run.

    ``run``: a run from ``whirr.init()`` to log to. Without it, the callback starts a run
    when training begins (``init_kwargs`` go to ``whirr.init``: ``name``, ``tags``, ...),
    inside a worker's job the job's run.
    """

    def __init__(self, run: Any = None, config: Any = None, **init_kwargs: Any) -> None:
        self._handle = RunHandle(run, config, init_kwargs)
        self._trained = False  # after train(): each log (evaluate, predict) updates the summary

    @property
    def run(self) -> Any:
        """The whirr run being logged to (None before training starts)."""
        return self._handle.run

    def on_train_begin(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        if state.is_world_process_zero:
            self._handle.start(_config(args, kwargs.get("model")))

    def on_log(
        self, args: Any, state: Any, control: Any, logs: dict[str, Any] | None = None, **kwargs: Any
    ) -> None:
        if state.is_world_process_zero and logs:
            if self._handle.run is None:  # evaluate() or predict() without train()
                self._handle.start(_config(args, kwargs.get("model")))
            self._handle.log(logs, step=int(state.global_step))
            if self._trained:
                self._handle.summarize({"global_step": state.global_step})

    def on_train_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        if state.is_world_process_zero:
            extra: dict[str, Any] = {"global_step": state.global_step}
            if state.best_metric is not None:
                extra["best_metric"] = state.best_metric
            self._handle.summarize(extra)
            self._trained = True

    def finish(self) -> None:
        """Write the summary and finish the run, when this callback started it."""
        self._handle.summarize()
        self._handle.finish()


def _config(args: Any, model: Any) -> dict[str, Any]:
    """The training arguments, then the model config's plain values under ``model/``."""
    config = scalars(args.to_dict())  # tokens come masked: "<HUB_TOKEN>"
    model_config = getattr(model, "config", None)
    if model_config is not None and hasattr(model_config, "to_dict"):
        for key, value in model_config.to_dict().items():
            if isinstance(value, str | int | float | bool):  # not label maps and the like
                config[f"model/{key}"] = value
    return config
