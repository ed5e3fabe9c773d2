"""Queue-wide decisions: pause and resume claiming, and reorder queued jobs by priority."""

from __future__ import annotations

from whirr.events import (
    QUEUE_STREAM,
    JobPriorityChanged,
    Pending,
    QueuePaused,
    QueueResumed,
    job_stream,
)
from whirr.projections import JobView, QueueView
from whirr.projections.jobs import Queued
from whirr.services.errors import InvalidState, NotFound
from whirr.store import EventStore, ViewReader


class Queue:
    """The queue's own controls over one store."""

    def __init__(self, store: EventStore) -> None:
        self.store = store

    def state(self) -> QueueView:
        """Whether the queue is paused, since when and why."""
        return self.store.queue_state()

    def pause(self, reason: str = "") -> bool:
        """Stop workers from claiming new jobs (running ones go on). False: already paused."""

        def decide(reader: ViewReader) -> list[Pending]:
            if reader.queue_state().paused:
                return []
            return [Pending(QUEUE_STREAM, QueuePaused(reason=reason))]

        return bool(self.store.transact(decide))

    def resume(self) -> bool:
        """Let workers claim jobs again. False: the queue was not paused."""

        def decide(reader: ViewReader) -> list[Pending]:
            if not reader.queue_state().paused:
                return []
            return [Pending(QUEUE_STREAM, QueueResumed())]

        return bool(self.store.transact(decide))

    def set_priority(self, job_id: int, priority: int) -> JobView:
        """Change a queued job's priority (higher is claimed first)."""

        def decide(reader: ViewReader) -> list[Pending]:
            job = reader.job(job_id)
            if job is None:
                raise NotFound(f"no job #{job_id}")
            if not isinstance(job.state, Queued):
                raise InvalidState(
                    f"job #{job_id} is {job.status}; only a queued job's priority can change"
                )
            if job.priority == priority:
                return []
            event = JobPriorityChanged(job_id=job_id, priority=priority)
            return [Pending(job_stream(job_id), event)]

        self.store.transact(decide)
        job = self.store.job(job_id)
        assert job is not None
        return job
