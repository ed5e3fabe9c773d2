"""The jobs projection: one ``JobView`` per job, folded from job events."""

from collections.abc import Callable
from datetime import datetime
from operator import attrgetter
from typing import Any, Literal

import msgspec

from whirr.events import (
    Event,
    JobCancelRequested,
    JobClaimed,
    JobCleaned,
    JobDependencyEnded,
    JobDependentAdded,
    JobFinished,
    JobHeartbeat,
    JobHeld,
    JobPriorityChanged,
    JobReleased,
    JobRequeued,
    JobRetryScheduled,
    JobStarted,
    JobSubmitted,
    JobUsage,
    Outcome,
    Recorded,
)

JobStatus = Literal["queued", "running", "completed", "failed", "cancelled", "timed_out"]
ACTIVE_STATUSES: tuple[JobStatus, ...] = ("queued", "running")
FINISHED_STATUSES: tuple[JobStatus, ...] = ("completed", "failed", "cancelled", "timed_out")


class Queued(msgspec.Struct, frozen=True, tag="queued"):
    """Waiting for a worker (from ``not_before`` on, when a retry backs off)."""

    since: datetime
    not_before: datetime | None = None


class Running(msgspec.Struct, frozen=True, tag="running"):
    """Held by ``worker_id`` under a lease; ``pid`` once the process was spawned."""

    worker_id: str
    claimed_at: datetime
    lease_expires_at: datetime
    gpu_ids: list[int] = []
    started_at: datetime | None = None
    pid: int | None = None


class Ended(msgspec.Struct, frozen=True, tag="ended"):
    """Finished for good with ``outcome``."""

    outcome: Outcome
    finished_at: datetime
    worker_id: str | None = None
    started_at: datetime | None = None
    exit_code: int | None = None
    error: str | None = None
    #: What the last attempt used (its cgroup's accounting), where its worker knew.
    usage: JobUsage | None = None


JobState = Queued | Running | Ended


class JobView(msgspec.Struct, frozen=True, kw_only=True):
    """What is known about one job now. ``state`` carries only the fields valid in it."""

    id: int
    name: str | None
    command_argv: list[str]
    workdir: str
    config: dict[str, Any]
    tags: list[str]
    run_id: str
    parent_job_id: int | None
    created_at: datetime
    attempt: int
    first_attempt: int
    max_attempts: int
    priority: int
    env: dict[str, str] = {}
    state: JobState
    cancel_requested: bool = False
    #: Position of the last event that changed this view.
    version: int = 0
    #: GPUs asked for (None: the worker's default, 1 on a GPU worker, 0 elsewhere).
    gpus: int | None = None
    after: list[int] = []
    after_any: bool = False
    #: Dependencies (from ``after``) that have not ended yet: the job cannot start before.
    waiting_on: list[int] = []
    #: Jobs that named this one in ``after`` (told when this job ends).
    dependents: list[int] = []
    retries: int = 0
    retry_delay: float = 10.0
    #: Failed attempts retried so far (each one also extends the attempt limit).
    failed_attempts: int = 0
    timeout_seconds: float | None = None
    snapshot: str | None = None
    memory_bytes: int | None = None
    cpus: float | None = None
    #: Dropped from the queue's listings and counts by ``whirr clean`` (ended jobs only);
    #: still readable by id, and its run stays.
    cleaned: bool = False
    #: Why a queued job is kept from workers (``job.held``, e.g. its sweep paused);
    #: None: not held. No worker claims it until ``job.released``.
    held: str | None = None

    @property
    def status(self) -> JobStatus:
        """The status word: queued, running or the outcome."""
        state = self.state
        if isinstance(state, Ended):
            return state.outcome
        return "running" if isinstance(state, Running) else "queued"

    @property
    def attempts_left(self) -> int:
        """Attempts worker loss may still consume after the current one (retried failures
        do not eat into them)."""
        return self.first_attempt + self.max_attempts - 1 + self.failed_attempts - self.attempt

    @property
    def worker_id(self) -> str | None:
        """The worker holding or that last held the job."""
        state = self.state
        return None if isinstance(state, Queued) else state.worker_id

    @property
    def started_at(self) -> datetime | None:
        """When the current or last attempt's process started."""
        state = self.state
        return None if isinstance(state, Queued) else state.started_at

    @property
    def finished_at(self) -> datetime | None:
        """When the job ended, if it did."""
        return self.state.finished_at if isinstance(self.state, Ended) else None

    @property
    def exit_code(self) -> int | None:
        """The exit code of the last attempt (minus the signal number when signalled)."""
        return self.state.exit_code if isinstance(self.state, Ended) else None

    @property
    def usage(self) -> JobUsage | None:
        """What the ended job's last attempt used, where its worker could account it."""
        return self.state.usage if isinstance(self.state, Ended) else None

    @property
    def error(self) -> str | None:
        """Why the job failed or was cancelled, if known."""
        return self.state.error if isinstance(self.state, Ended) else None

    @property
    def lease_expires_at(self) -> datetime | None:
        """When the running attempt's lease runs out."""
        return self.state.lease_expires_at if isinstance(self.state, Running) else None


def status_column(view: JobView) -> str:
    """The status a store indexes the job under: its status, or ``cleaned`` once
    ``whirr clean`` dropped it (then no listing or count finds it)."""
    return "cleaned" if view.cleaned else view.status


def key(event: Event) -> int | None:
    """The job an event belongs to, or None if it is not a job event."""
    return getattr(event, "job_id", None) if type(event) in HANDLES else None


def apply(view: JobView | None, rec: Recorded) -> JobView | None:
    """Fold one recorded event into the job's view (pure)."""
    step = STEPS.get(type(rec.event))
    return view if step is None else step(view, rec)


# One step per event type (``STEPS``), which a fold looks up once by the event's type
# and calls directly (``whirr.projections``): a replay folds millions of events, mostly
# heartbeats, and a chain of isinstance tests cost more than the fold itself. Every step
# but the submit's ignores a job never submitted (None: no view), never crashing on one.
def _submitted(view: JobView | None, rec: Recorded) -> JobView:
    event: JobSubmitted = rec.event  # type: ignore[assignment]
    at = rec.recorded_at
    return JobView(
        id=event.job_id,
        name=event.name,
        command_argv=event.command_argv,
        workdir=event.workdir,
        config=event.config,
        tags=event.tags,
        run_id=event.run_id,
        parent_job_id=event.parent_job_id,
        created_at=at,
        attempt=event.first_attempt,
        first_attempt=event.first_attempt,
        max_attempts=event.max_attempts,
        priority=event.priority,
        env=event.env,
        state=Queued(since=at),
        version=rec.position,
        gpus=event.gpus,
        after=event.after,
        after_any=event.after_any,
        waiting_on=sorted(set(event.after)),
        retries=event.retries,
        retry_delay=event.retry_delay,
        timeout_seconds=event.timeout_seconds,
        snapshot=event.snapshot,
        memory_bytes=event.memory_bytes,
        cpus=event.cpus,
    )


def _changed(view: JobView, state: JobState, rec: Recorded, **changes: Any) -> JobView:
    """``view`` in ``state`` with ``changes``, as of ``rec``."""
    if isinstance(state, Ended):
        changes["held"] = None  # an ended job is kept from nobody
    return msgspec.structs.replace(view, state=state, version=rec.position, **changes)


def _claimed(view: JobView | None, rec: Recorded) -> JobView | None:
    if view is None:
        return None
    event: JobClaimed = rec.event  # type: ignore[assignment]
    running = Running(
        worker_id=event.worker_id,
        claimed_at=rec.recorded_at,
        lease_expires_at=event.lease_expires_at,
        gpu_ids=event.gpu_ids,
    )
    return _changed(view, running, rec, attempt=event.attempt)


def _started(view: JobView | None, rec: Recorded) -> JobView | None:
    if view is None:
        return None
    event: JobStarted = rec.event  # type: ignore[assignment]
    state = view.state
    if isinstance(state, Running) and event.attempt == view.attempt:
        started = msgspec.structs.replace(state, started_at=rec.recorded_at, pid=event.pid)
        return msgspec.structs.replace(view, state=started, version=rec.position)
    return _changed(view, state, rec)


def _heartbeat(view: JobView | None, rec: Recorded) -> JobView | None:
    if view is None:
        return None
    event: JobHeartbeat = rec.event  # type: ignore[assignment]
    state = view.state
    if isinstance(state, Running) and event.attempt == view.attempt:
        renewed = msgspec.structs.replace(state, lease_expires_at=event.lease_expires_at)
        return msgspec.structs.replace(view, state=renewed, version=rec.position)
    return _changed(view, state, rec)


def _cancel_requested(view: JobView | None, rec: Recorded) -> JobView | None:
    if view is None:
        return None
    return _changed(view, view.state, rec, cancel_requested=True)


def _finished(view: JobView | None, rec: Recorded) -> JobView | None:
    if view is None:
        return None
    event: JobFinished = rec.event  # type: ignore[assignment]
    state = view.state
    ended = Ended(
        outcome=event.outcome,
        finished_at=rec.recorded_at,
        worker_id=event.worker_id or None,
        started_at=state.started_at if isinstance(state, Running) else None,
        exit_code=event.exit_code,
        error=event.error,
        usage=event.usage,
    )
    return _changed(view, ended, rec)


def _held(view: JobView | None, rec: Recorded) -> JobView | None:
    if view is None:
        return None
    if not isinstance(view.state, Queued):
        return view  # only a queued job can be held (no decision holds another)
    event: JobHeld = rec.event  # type: ignore[assignment]
    return _changed(view, view.state, rec, held=event.reason)


def _released(view: JobView | None, rec: Recorded) -> JobView | None:
    if view is None:
        return None
    return _changed(view, view.state, rec, held=None)


def _requeued(view: JobView | None, rec: Recorded) -> JobView | None:
    if view is None:
        return None
    event: JobRequeued = rec.event  # type: ignore[assignment]
    return _changed(view, Queued(since=rec.recorded_at), rec, attempt=event.attempt + 1)


def _retry_scheduled(view: JobView | None, rec: Recorded) -> JobView | None:
    if view is None:
        return None
    event: JobRetryScheduled = rec.event  # type: ignore[assignment]
    return _changed(
        view,
        Queued(since=rec.recorded_at, not_before=event.not_before),
        rec,
        attempt=event.attempt + 1,
        failed_attempts=view.failed_attempts + 1,
    )


def _priority_changed(view: JobView | None, rec: Recorded) -> JobView | None:
    if view is None:
        return None
    event: JobPriorityChanged = rec.event  # type: ignore[assignment]
    return _changed(view, view.state, rec, priority=event.priority)


def _dependency_ended(view: JobView | None, rec: Recorded) -> JobView | None:
    if view is None:
        return None
    event: JobDependencyEnded = rec.event  # type: ignore[assignment]
    waiting = [j for j in view.waiting_on if j != event.dependency_id]
    return _changed(view, view.state, rec, waiting_on=waiting)


def _dependent_added(view: JobView | None, rec: Recorded) -> JobView | None:
    if view is None:
        return None
    event: JobDependentAdded = rec.event  # type: ignore[assignment]
    dependents = sorted({*view.dependents, event.dependent_id})
    return _changed(view, view.state, rec, dependents=dependents)


def _cleaned(view: JobView | None, rec: Recorded) -> JobView | None:
    if view is None:
        return None
    if not isinstance(view.state, Ended):
        return view  # only an ended job leaves the queue's views
    return _changed(view, view.state, rec, cleaned=True)


#: The fold of each event type this projection handles: ``step(view, rec) -> view``.
STEPS: dict[type[Event], Callable[[JobView | None, Recorded], JobView | None]] = {
    JobSubmitted: _submitted,
    JobClaimed: _claimed,
    JobStarted: _started,
    JobHeartbeat: _heartbeat,
    JobCancelRequested: _cancel_requested,
    JobFinished: _finished,
    JobHeld: _held,
    JobReleased: _released,
    JobRequeued: _requeued,
    JobRetryScheduled: _retry_scheduled,
    JobPriorityChanged: _priority_changed,
    JobDependencyEnded: _dependency_ended,
    JobDependentAdded: _dependent_added,
    JobCleaned: _cleaned,
}
#: The event types this projection folds (a fold routes no other type to it).
HANDLES: frozenset[type[Event]] = frozenset(STEPS)
#: The key of an event of a type in ``HANDLES`` (``key`` without the type test).
key_of = attrgetter("job_id")
