"""Finding and voiding the events of a log that do not decode (``whirr doctor``,
``whirr repair``): fixing forward, never rewriting history."""

from __future__ import annotations

from whirr.events import LOG_STREAM, EventsVoided, Pending, Recorded
from whirr.projections.replay import outstanding, voided_positions
from whirr.store import guard
from whirr.store.protocol import EventStore

#: Most positions one ``log.voided`` event names (a larger repair appends several).
VOID_BATCH = 10_000


def unreadable_events(store: EventStore) -> list[Recorded]:
    """The events of the whole log that do not decode and are not voided yet."""
    with guard.quiet():
        records = store.read()
    return outstanding(records, voided_positions(records))


def void_unreadable(store: EventStore, reason: str) -> list[int]:
    """Append ``log.voided`` for every undecodable event not yet voided, then rebuild the
    views (a view an older whirr folded from such an event is dropped with it); returns
    the positions voided (none: nothing was appended)."""
    positions = [r.position for r in unreadable_events(store)]
    if positions:
        store.append(
            [
                Pending(
                    LOG_STREAM, EventsVoided(positions=positions[i : i + VOID_BATCH], reason=reason)
                )
                for i in range(0, len(positions), VOID_BATCH)
            ]
        )
        with guard.quiet():
            store.rebuild()
    return positions
