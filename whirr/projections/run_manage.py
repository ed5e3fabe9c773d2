"""How run-management events change a run's view (pure): the part of the runs
projection for what people decide after a run started (``whirr.events.manage``)."""

from __future__ import annotations

from typing import Any, Protocol

from whirr.events import (
    Event,
    RunArchived,
    RunConfigUpdated,
    RunDeleted,
    RunNoteSet,
    RunRenamed,
    RunTagsAdded,
    RunTagsRemoved,
    RunUnarchived,
)

#: The status of a deleted run's view: kept as a tombstone row, which every view reader
#: leaves out (so a deleted run is gone from every listing, and a rebuild agrees).
DELETED = "deleted"

MANAGE_EVENTS: frozenset[type[Event]] = frozenset(
    {
        RunRenamed,
        RunTagsAdded,
        RunTagsRemoved,
        RunNoteSet,
        RunArchived,
        RunUnarchived,
        RunDeleted,
        RunConfigUpdated,
    }
)


class _Managed(Protocol):
    """The fields of a run's view these events change (``RunView`` has them)."""

    @property
    def name(self) -> str | None: ...
    @property
    def tags(self) -> list[str]: ...
    @property
    def notes(self) -> str: ...
    @property
    def config(self) -> dict[str, Any]: ...


def changes(view: _Managed, event: Event) -> dict[str, Any]:
    """The fields of a live (not deleted) run's view that one run-management event
    changes, with their new values."""
    if isinstance(event, RunRenamed):
        return {"name": event.name}
    if isinstance(event, RunTagsAdded):
        added = [t for t in dict.fromkeys(event.tags) if t not in view.tags]
        return {"tags": [*view.tags, *added]}
    if isinstance(event, RunTagsRemoved):
        gone = set(event.tags)
        return {"tags": [t for t in view.tags if t not in gone]}
    if isinstance(event, RunNoteSet):
        if event.append and view.notes:
            return {"notes": f"{view.notes}\n\n{event.text}"}
        return {"notes": event.text}
    if isinstance(event, RunArchived | RunUnarchived):
        return {"archived": isinstance(event, RunArchived)}
    if isinstance(event, RunConfigUpdated):
        return {"config": {**view.config, **event.config}}
    if isinstance(event, RunDeleted):
        return {"status": DELETED}
    return {}
