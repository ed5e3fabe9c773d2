"""Events that keep a queued job from workers and give it back: held and released.

A held job stays ``queued`` (its place in the queue, its attempt) but no worker claims it
until it is released. Sweeps hold their remaining jobs when they pause (fail-fast)."""

from whirr.events.base import Event
from whirr.events.bounds import JobId


class JobHeld(Event, frozen=True, tag="job.held"):
    """Queued job ``job_id`` is kept from workers until released; ``reason`` says why
    (shown beside its status)."""

    job_id: JobId
    reason: str


class JobReleased(Event, frozen=True, tag="job.released"):
    """Held job ``job_id`` may be claimed again."""

    job_id: JobId
