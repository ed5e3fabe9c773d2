"""The queue-state projection: whether the queue is paused (one view, key ``"queue"``)."""

from datetime import datetime

import msgspec

from whirr.events import Event, QueuePaused, QueueResumed, Recorded

#: The one key of this projection.
QUEUE_KEY = "queue"


class QueueView(msgspec.Struct, frozen=True, kw_only=True):
    """The queue as a whole. ``paused``: workers claim nothing new (running jobs go on)."""

    id: str = QUEUE_KEY
    paused: bool = False
    since: datetime | None = None
    reason: str = ""
    version: int = 0


def key(event: Event) -> str | None:
    """``"queue"`` for queue-wide events, else None."""
    return QUEUE_KEY if isinstance(event, QueuePaused | QueueResumed) else None


def apply(view: QueueView | None, rec: Recorded) -> QueueView | None:
    """Fold a pause or resume into the queue's view (pure)."""
    event = rec.event
    if isinstance(event, QueuePaused):
        return QueueView(
            paused=True, since=rec.recorded_at, reason=event.reason, version=rec.position
        )
    if isinstance(event, QueueResumed):
        return QueueView(paused=False, since=rec.recorded_at, version=rec.position)
    return view
