"""What every framework hook shares: the run it logs to, the numbers it keeps, and the
clear ImportError for a framework that is not installed."""

from __future__ import annotations

import importlib
import math
from collections.abc import Mapping
from types import ModuleType
from typing import Any

import whirr


def require(module: str, package: str, hook: str) -> ModuleType:
    """Import ``module``, or raise an ImportError naming the package to install."""
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise ImportError(
            f"whirr.integrations.{hook} needs {package} (pip install {package}): {exc}"
        ) from exc


def number(value: Any) -> float | int | None:
    """``value`` as a plain int or float when it is one number (numpy scalars, 0-d
    arrays and tensors included); None for anything else (strings, lists, None)."""
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, int | float):
        return value
    if isinstance(value, str | bytes) or value is None:
        return None
    if getattr(value, "ndim", 0) != 0:
        return None  # an array or tensor with dimensions: not one number
    try:
        item = value.item() if hasattr(value, "item") else float(value)
    except (TypeError, ValueError, RuntimeError):
        return None
    return item if isinstance(item, int | float) and not isinstance(item, bool) else None


def numbers(values: Mapping[str, Any] | None) -> dict[str, float | int]:
    """The entries of ``values`` that are single numbers, as plain Python numbers."""
    out: dict[str, float | int] = {}
    for key, value in (values or {}).items():
        plain = number(value)
        if plain is not None:
            out[str(key)] = plain
    return out


def scalars(values: Mapping[str, Any] | None) -> dict[str, Any]:
    """The entries of ``values`` a config can hold as they are: numbers, strings, bools
    and None; anything else (lists, objects) as its ``str``."""
    out: dict[str, Any] = {}
    for key, value in (values or {}).items():
        if value is None or isinstance(value, str | bool):
            out[str(key)] = value
            continue
        plain = number(value)
        if plain is not None and not (isinstance(plain, float) and not math.isfinite(plain)):
            out[str(key)] = plain
        elif isinstance(value, list | tuple) and all(
            isinstance(v, str | int | float | bool) for v in value
        ):
            out[str(key)] = list(value)
        else:
            out[str(key)] = str(value)
    return out


class RunHandle:
    """The run a hook logs to: the one it was given, or one it starts with ``whirr.init``
    (a job's run inside a worker's job), which only it then finishes. It remembers the
    last value of every metric logged, for the summary."""

    def __init__(self, run: Any, config: Any, init_kwargs: dict[str, Any]) -> None:
        if run is not None and init_kwargs:
            raise TypeError(
                f"pass either run= or whirr.init() arguments, not both: {sorted(init_kwargs)}"
            )
        self._given = run
        if config is not None and not isinstance(config, Mapping):
            config = vars(config)  # argparse.Namespace and the like, as whirr.init takes
        self._config = dict(config or {})
        self._init_kwargs = init_kwargs
        self.run: Any = run
        self.owned = False  # whether this hook started the run (and so finishes it)
        self.latest: dict[str, float | int] = {}

    def start(self, framework_config: Mapping[str, Any] | None = None) -> Any:
        """The run, started now when none was given or the one started before has
        finished: the framework's hyperparameters, with the user's ``config`` over them."""
        if self.run is not None and (self.run is self._given or self.run.status == "running"):
            return self.run
        config = {**dict(framework_config or {}), **self._config}
        self.run = whirr.init(config=config, **self._init_kwargs)
        self.owned = True
        self.latest = {}
        return self.run

    def log(self, metrics: Mapping[str, Any], step: int | None) -> None:
        """Log the numbers in ``metrics`` at ``step`` (nothing when there are none)."""
        values = numbers(metrics)
        if values:
            self.latest.update(values)
            self.start().log(values, step=step)

    def summarize(self, extra: Mapping[str, Any] | None = None) -> None:
        """Set the run's summary: the last value of each metric, then ``extra``."""
        values = {**self.latest, **numbers(extra)}
        if values and self.run is not None and self.run.status == "running":
            self.run.summary(values)

    def finish(self, status: str = "completed", error: str | None = None) -> None:
        """Finish the run when this hook started it; a given run is the caller's."""
        if self.owned and self.run is not None:
            self.run.finish(status, error)
