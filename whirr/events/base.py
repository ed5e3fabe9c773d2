"""The event base class and the envelope the log wraps every event in."""

from datetime import datetime

import msgspec


class Event(msgspec.Struct, frozen=True, kw_only=True, tag_field="type"):
    """Base of every event. Subclasses set an explicit, stable ``tag`` (never reused).

    Events evolve only by adding fields with defaults; a field never changes type.
    """


class Recorded(msgspec.Struct, frozen=True):
    """An event as the log stored it: its position, time and stream.

    Projections take time from ``recorded_at``, never from a clock.
    """

    position: int
    recorded_at: datetime
    stream: str
    event: Event


class Pending(msgspec.Struct, frozen=True):
    """An event about to be appended to ``stream``."""

    stream: str
    event: Event


def job_stream(job_id: int) -> str:
    """The stream name of a job's events."""
    return f"job-{job_id}"


def run_stream(run_id: str) -> str:
    """The stream name of a run's events."""
    return f"run-{run_id}"


def worker_stream(worker_id: str) -> str:
    """The stream name of a worker's events."""
    return f"worker-{worker_id}"
