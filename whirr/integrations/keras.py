"""A Keras callback that logs ``model.fit`` to a whirr run (Keras 3, any backend).

```python
from whirr.integrations.keras import WhirrCallback

model.fit(x, y, epochs=10, validation_split=0.2, callbacks=[WhirrCallback(config={"units": 64})])
```

Each epoch's logs (``loss``, ``val_loss``, the compiled metrics) are one row at
``step=epoch`` (Keras counts epochs from 0, as its ``History`` does). The config holds
``epochs``, ``steps_per_epoch``, the optimizer's name and learning rate, then the
``config`` given. The summary holds the last epoch's values and ``epochs_trained``.
"""

from __future__ import annotations

from typing import Any

from whirr.integrations._common import RunHandle, number, require

keras = require("keras", "keras", "keras")
#: Typed Any: mypy does not see into a module imported by name.
_Callback: Any = keras.callbacks.Callback

__all__ = ["WhirrCallback"]


class WhirrCallback(_Callback):
    """Log each epoch of ``model.fit`` to a whirr run.

    ``run``: a run from ``whirr.init()`` to log to (it stays open after ``fit``).
    Without it, the callback starts a run when training begins (``init_kwargs`` go to
    ``whirr.init``: ``name``, ``tags``, ...), inside a worker's job the job's run, and
    finishes it when training ends: one ``fit`` call, one run.
    """

    def __init__(self, run: Any = None, config: Any = None, **init_kwargs: Any) -> None:
        super().__init__()
        self._handle = RunHandle(run, config, init_kwargs)
        self._epochs_trained = 0

    @property
    def run(self) -> Any:
        """The whirr run being logged to (None before training starts)."""
        return self._handle.run

    def on_train_begin(self, logs: dict[str, Any] | None = None) -> None:
        params = self.params or {}
        config: dict[str, Any] = {
            "epochs": params.get("epochs"),
            "steps_per_epoch": params.get("steps"),
        }
        optimizer = getattr(self.model, "optimizer", None)
        if optimizer is not None:
            config["optimizer"] = type(optimizer).__name__
            rate = number(getattr(optimizer, "learning_rate", None))
            if rate is not None:
                # A float32 variable: 0.01 reads back as 0.009999999776; its 7 digits are
                # the value that was set.
                config["learning_rate"] = float(f"{rate:.7g}")
        self._epochs_trained = 0
        self._handle.start(config)

    def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        self._epochs_trained += 1
        self._handle.log(logs or {}, step=int(epoch))

    def on_train_end(self, logs: dict[str, Any] | None = None) -> None:
        self._handle.summarize({"epochs_trained": self._epochs_trained})
        self._handle.finish()
