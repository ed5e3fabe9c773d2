"""Events in a job's life: submitted, claimed, started, heartbeat, cancel, finished, requeued,
retry scheduled, priority changed, dependency ended."""

from datetime import datetime
from typing import Any, Literal

from whirr.events.base import Event
from whirr.events.bounds import (
    Attempt,
    Cpus,
    ExitCode,
    GpuId,
    Gpus,
    JobId,
    MaxAttempts,
    MemoryBytes,
    Pid,
    Priority,
    Retries,
    RetryDelay,
    TimeoutSeconds,
)
from whirr.events.usage import JobUsage

#: How a job attempt can end.
Outcome = Literal["completed", "failed", "cancelled", "timed_out"]


class JobSubmitted(Event, frozen=True, tag="job.submitted"):
    """A job entered the queue. ``job_id`` is assigned by the log, densely from 1."""

    job_id: JobId
    command_argv: list[str]
    workdir: str
    run_id: str
    name: str | None = None
    config: dict[str, Any] = {}
    tags: list[str] = []
    parent_job_id: JobId | None = None
    #: The attempt number the job starts at (a retry continues its parent's count).
    first_attempt: Attempt = 1
    #: How many attempts (first try included) worker loss may consume before the job fails.
    max_attempts: MaxAttempts = 3
    priority: Priority = 0
    env: dict[str, str] = {}
    #: GPUs the job needs; None: the worker's default (1 on a GPU worker, 0 elsewhere).
    gpus: Gpus | None = None
    #: Jobs that must end first (they existed at submit, so no cycle can form).
    after: list[JobId] = []
    #: Run once ``after`` ended in any way (else a failed dependency cancels this job).
    after_any: bool = False
    #: Failed attempts retried (same job id, next attempt) after an exponential backoff.
    retries: Retries = 0
    #: Backoff before the first retry in seconds; it doubles with each further one.
    retry_delay: RetryDelay = 10.0
    #: Seconds an attempt may run before its process group is killed (``timed_out``).
    timeout_seconds: TimeoutSeconds | None = None
    #: Memory limit of the whole job (cgroup ``memory.max``) where the worker can set one.
    memory_bytes: MemoryBytes | None = None
    #: CPU limit of the whole job, in CPUs (cgroup ``cpu.max``) where the worker can set one.
    cpus: Cpus | None = None
    #: Content digest of the code snapshot ``workdir`` points into, when one was taken.
    snapshot: str | None = None


class JobClaimed(Event, frozen=True, tag="job.claimed"):
    """A worker took a queued job and holds a lease on it until ``lease_expires_at``."""

    job_id: JobId
    worker_id: str
    attempt: Attempt
    lease_expires_at: datetime
    gpu_ids: list[GpuId] = []


class JobStarted(Event, frozen=True, tag="job.started"):
    """The worker spawned the job's process."""

    job_id: JobId
    worker_id: str
    attempt: Attempt
    pid: Pid


class JobHeartbeat(Event, frozen=True, tag="job.heartbeat"):
    """The worker renewed its lease on the job."""

    job_id: JobId
    worker_id: str
    attempt: Attempt
    lease_expires_at: datetime


class JobCancelRequested(Event, frozen=True, tag="job.cancel_requested"):
    """Somebody asked for a running job to be cancelled; its worker will stop it."""

    job_id: JobId
    reason: str = ""


class JobFinished(Event, frozen=True, tag="job.finished"):
    """An attempt ended, or a queued job was cancelled (``worker_id`` empty then).

    ``usage``, where the worker held the job in a cgroup: ``cpu_seconds`` (user + system,
    every process of the job), ``cpu_user_seconds``, ``cpu_system_seconds`` and
    ``memory_peak_bytes`` (only with the memory controller), each possibly null."""

    job_id: JobId
    attempt: Attempt
    outcome: Outcome
    worker_id: str = ""
    exit_code: ExitCode | None = None
    error: str | None = None
    #: What the attempt used (its cgroup's accounting); None where the worker had none.
    usage: JobUsage | None = None


class JobRequeued(Event, frozen=True, tag="job.requeued"):
    """A running attempt was abandoned (lease expired: worker lost); the job is queued again."""

    job_id: JobId
    attempt: Attempt
    worker_id: str
    reason: str


class JobRetryScheduled(Event, frozen=True, tag="job.retry_scheduled"):
    """A failed attempt will be retried: the job is queued again, claimable from
    ``not_before`` (exponential backoff), as attempt ``attempt + 1``."""

    job_id: JobId
    attempt: Attempt
    worker_id: str
    not_before: datetime
    exit_code: ExitCode | None = None
    error: str | None = None
    #: What the failed attempt used (its cgroup's accounting), where known.
    usage: JobUsage | None = None


class JobPriorityChanged(Event, frozen=True, tag="job.priority_changed"):
    """Somebody changed a queued job's priority (higher runs first)."""

    job_id: JobId
    priority: Priority


class JobDependencyEnded(Event, frozen=True, tag="job.dependency_ended"):
    """Job ``dependency_id``, which ``job_id`` waits for, ended with ``outcome``."""

    job_id: JobId
    dependency_id: JobId
    outcome: Outcome


class JobDependentAdded(Event, frozen=True, tag="job.dependent_added"):
    """Job ``dependent_id`` was submitted to run after ``job_id``: when ``job_id`` ends, it is
    told (recorded on the dependency's stream so its view knows whom to tell)."""

    job_id: JobId
    dependent_id: JobId
