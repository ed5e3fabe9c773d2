"""``run.config``: the run's configuration as a dict whose changes are recorded.

Before, ``run.config`` was a copy, so ``run.config["b"] = 2`` after ``init`` was silently
lost. Now setting or updating a key writes ``config.json`` again and records a
``run.config_updated`` event (locally, or through the server for a remote run). Keys are
never removed from a recorded config: ``del``, ``pop``, ``popitem`` and ``clear`` raise.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any

#: Told the new values of every change; returns them as recorded (plain JSON values).
OnChange = Callable[[dict[str, Any]], dict[str, Any]]


class RunConfig(dict[str, Any]):
    """A dict of the run's config; every set or update is recorded (see the module)."""

    def __init__(self, values: Mapping[str, Any], on_change: OnChange) -> None:
        super().__init__(values)
        self._on_change = on_change

    def __setitem__(self, key: str, value: Any) -> None:
        self.update({key: value})

    def update(self, *args: Any, **kwargs: Any) -> None:
        """Merge values into the config, as ``dict.update`` takes them; recorded."""
        changes: dict[str, Any] = dict(*args, **kwargs)
        if not changes:
            return
        # Checked and made plain (numpy scalars, paths) before anything changes here.
        super().update(self._on_change(changes))

    def setdefault(self, key: str, default: Any = None) -> Any:
        """``dict.setdefault``; a new key is recorded."""
        if key not in self:
            self.update({key: default})
        return self[key]

    def __ior__(self, other: Any) -> RunConfig:  # type: ignore[override,misc]
        self.update(other)
        return self

    def _refuse(self, *_: Any, **__: Any) -> Any:
        raise TypeError("keys cannot be removed from a run's recorded config")

    __delitem__ = _refuse
    pop = _refuse
    popitem = _refuse
    clear = _refuse

    def copy(self) -> dict[str, Any]:
        """A plain dict copy (changes to it are not recorded)."""
        return dict(self)

    def __reduce__(self) -> tuple[Any, ...]:
        return (dict, (dict(self),))  # pickles (and copies) as the plain dict it holds


def plain_tags(tags: Iterable[Any]) -> list[str]:
    """Tags as strings, stripped, empty ones dropped, each once."""
    return list(dict.fromkeys(s for s in (str(t).strip() for t in tags) if s))
