"""Starting a study's stream exactly once (its name is its identity)."""

from __future__ import annotations

from whirr.events import Event, Pending
from whirr.services.errors import InvalidState
from whirr.store import ConflictError, EventStore

#: How often creating retries when another writer moved the log meanwhile.
_APPEND_RETRIES = 50


def create_stream(store: EventStore, stream: str, event: Event, taken: str) -> None:
    """Append ``event`` as the first event of ``stream``; ``InvalidState(taken)`` if the
    stream already has events.

    A conditional append at the head we read: if anything was appended between our read
    and our append (another study with the same name, or any other event), the append is
    refused and we look again, so two concurrent creations cannot both succeed."""
    for _ in range(_APPEND_RETRIES):
        head = store.head()
        if store.read(after=0, stream=stream, limit=1):
            raise InvalidState(taken)
        try:
            store.append([Pending(stream, event)], expect=head)
            return
        except ConflictError:
            continue
    raise InvalidState("the event log is too busy to record this; try again")
