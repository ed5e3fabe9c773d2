"""The jobs projection: one ``JobView`` per job, folded from job events."""

from datetime import datetime
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
    return getattr(event, "job_id", None) if type(event) in _HANDLED else None


def apply(view: JobView | None, rec: Recorded) -> JobView | None:
    """Fold one recorded event into the job's view (pure)."""
    event = rec.event
    at = rec.recorded_at
    if isinstance(event, JobSubmitted):
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
    if view is None:
        return None  # an event for a job we never saw submitted: ignore, never crash
    state = view.state
    new_state: JobState = state
    changes: dict[str, Any] = {}
    if isinstance(event, JobClaimed):
        new_state = Running(
            worker_id=event.worker_id,
            claimed_at=at,
            lease_expires_at=event.lease_expires_at,
            gpu_ids=event.gpu_ids,
        )
        changes["attempt"] = event.attempt
    elif isinstance(event, JobStarted):
        if isinstance(state, Running) and event.attempt == view.attempt:
            new_state = msgspec.structs.replace(state, started_at=at, pid=event.pid)
    elif isinstance(event, JobHeartbeat):
        if isinstance(state, Running) and event.attempt == view.attempt:
            new_state = msgspec.structs.replace(state, lease_expires_at=event.lease_expires_at)
    elif isinstance(event, JobCancelRequested):
        changes["cancel_requested"] = True
    elif isinstance(event, JobFinished):
        new_state = Ended(
            outcome=event.outcome,
            finished_at=at,
            worker_id=event.worker_id or None,
            started_at=state.started_at if isinstance(state, Running) else None,
            exit_code=event.exit_code,
            error=event.error,
            usage=event.usage,
        )
    elif isinstance(event, JobHeld):
        if not isinstance(state, Queued):
            return view  # only a queued job can be held (no decision holds another)
        changes["held"] = event.reason
    elif isinstance(event, JobReleased):
        changes["held"] = None
    elif isinstance(event, JobRequeued):
        new_state = Queued(since=at)
        changes["attempt"] = event.attempt + 1
    elif isinstance(event, JobRetryScheduled):
        new_state = Queued(since=at, not_before=event.not_before)
        changes["attempt"] = event.attempt + 1
        changes["failed_attempts"] = view.failed_attempts + 1
    elif isinstance(event, JobPriorityChanged):
        changes["priority"] = event.priority
    elif isinstance(event, JobDependencyEnded):
        changes["waiting_on"] = [j for j in view.waiting_on if j != event.dependency_id]
    elif isinstance(event, JobDependentAdded):
        changes["dependents"] = sorted({*view.dependents, event.dependent_id})
    elif isinstance(event, JobCleaned):
        if not isinstance(state, Ended):
            return view  # only an ended job leaves the queue's views
        changes["cleaned"] = True
    if isinstance(new_state, Ended):
        changes["held"] = None  # an ended job is kept from nobody
    return msgspec.structs.replace(view, state=new_state, version=rec.position, **changes)


_HANDLED = frozenset(
    {
        JobSubmitted,
        JobClaimed,
        JobStarted,
        JobHeartbeat,
        JobCancelRequested,
        JobFinished,
        JobRequeued,
        JobRetryScheduled,
        JobPriorityChanged,
        JobDependencyEnded,
        JobDependentAdded,
        JobCleaned,
        JobHeld,
        JobReleased,
    }
)
