"""Events about the queue as a whole: paused and resumed."""

from whirr.events.base import Event

#: The stream queue-wide events are recorded in.
QUEUE_STREAM = "queue"


class QueuePaused(Event, frozen=True, tag="queue.paused"):
    """No worker claims a new job until the queue is resumed; running jobs go on."""

    reason: str = ""


class QueueResumed(Event, frozen=True, tag="queue.resumed"):
    """Workers claim jobs again."""
