"""Job decisions: submit, claim, start, heartbeat, finish, cancel, retry, requeue.

Each decision runs inside ``store.transact`` so it reads the views and appends its events
atomically: two workers can never claim the same job, and a stale worker cannot finish a
job whose lease it lost.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta
from typing import Any

from whirr.clock import utc_now
from whirr.events import (
    JobCancelRequested,
    JobClaimed,
    JobFinished,
    JobHeartbeat,
    JobRequeued,
    JobStarted,
    JobSubmitted,
    Outcome,
    Pending,
    RunFinished,
    RunStarted,
    job_stream,
    run_stream,
)
from whirr.projections import JobView
from whirr.projections.jobs import Ended, Queued, Running
from whirr.projections.queue import pick
from whirr.services.errors import InvalidRequest, InvalidState, LeaseLost, NotFound
from whirr.store import EventStore, ViewReader

#: How many queued jobs the claim policy looks at (the head of the claim order).
CLAIM_WINDOW = 64
DEFAULT_MAX_ATTEMPTS = 3


def check_runnable(argv: Sequence[str], workdir: str) -> None:
    """Reject what cannot start: an empty command, a missing workdir or executable."""
    if not argv or not argv[0]:
        raise InvalidRequest("empty command: give the program to run, e.g. `python train.py`")
    if not os.path.isdir(workdir):
        raise InvalidRequest(f"working directory {workdir!r} does not exist")
    program = argv[0]
    if os.sep in program:
        path = program if os.path.isabs(program) else os.path.join(workdir, program)
        if not (os.path.isfile(path) and os.access(path, os.X_OK)):
            raise InvalidRequest(f"{program!r} is not an executable file (from {workdir})")
    elif shutil.which(program) is None:
        raise InvalidRequest(f"command not found: {program!r}")


def outcome_for(job: JobView, exit_code: int | None) -> Outcome:
    """How an attempt that exited with ``exit_code`` ends the job."""
    if job.cancel_requested:
        return "cancelled"
    return "completed" if exit_code == 0 else "failed"


class Jobs:
    """The job decisions over one store."""

    def __init__(self, store: EventStore, clock: Callable[[], datetime] = utc_now) -> None:
        self.store = store
        self.clock = clock

    def get(self, job_id: int) -> JobView:
        """One job, or ``NotFound``."""
        job = self.store.job(job_id)
        if job is None:
            raise NotFound(f"no job #{job_id}")
        return job

    # -- the queue side ------------------------------------------------------
    def submit(
        self,
        argv: Sequence[str],
        workdir: str,
        *,
        name: str | None = None,
        config: dict[str, Any] | None = None,
        tags: Sequence[str] = (),
        parent_job_id: int | None = None,
        first_attempt: int = 1,
        max_attempts: int = DEFAULT_MAX_ATTEMPTS,
        priority: int = 0,
        env: dict[str, str] | None = None,
        check: bool = True,
    ) -> JobView:
        """Queue a command. ``check`` verifies here that it can start (local submits)."""
        if check:
            check_runnable(argv, workdir)
        elif not argv or not argv[0]:
            raise InvalidRequest("empty command")
        if max_attempts < 1:
            raise InvalidRequest("max_attempts must be at least 1")

        def decide(reader: ViewReader) -> list[Pending]:
            job_id = reader.max_job_id() + 1
            event = JobSubmitted(
                job_id=job_id,
                command_argv=list(argv),
                workdir=workdir,
                run_id=f"job-{job_id}",
                name=name,
                config=dict(config or {}),
                tags=[t for t in tags if t],
                parent_job_id=parent_job_id,
                first_attempt=first_attempt,
                max_attempts=max_attempts,
                priority=priority,
                env=dict(env or {}),
            )
            return [Pending(job_stream(job_id), event)]

        (rec,) = self.store.transact(decide)
        return self.get(rec.event.job_id)  # type: ignore[attr-defined]

    def claim(self, worker_id: str, lease_seconds: float) -> JobView | None:
        """Hand the next queued job to ``worker_id`` with a fresh lease, or None."""

        def decide(reader: ViewReader) -> list[Pending]:
            job = pick(reader.claimable_jobs(CLAIM_WINDOW))
            if job is None:
                return []
            event = JobClaimed(
                job_id=job.id,
                worker_id=worker_id,
                attempt=job.attempt,
                lease_expires_at=self.clock() + timedelta(seconds=lease_seconds),
            )
            return [Pending(job_stream(job.id), event)]

        recorded = self.store.transact(decide)
        return self.get(recorded[0].event.job_id) if recorded else None  # type: ignore[attr-defined]

    def _held(self, reader: ViewReader, job_id: int, worker_id: str, attempt: int) -> JobView:
        """The job if ``worker_id`` still holds ``attempt`` of it; else ``LeaseLost``."""
        job = reader.job(job_id)
        if job is None:
            raise NotFound(f"no job #{job_id}")
        state = job.state
        if not isinstance(state, Running) or state.worker_id != worker_id or job.attempt != attempt:
            raise LeaseLost(
                f"worker {worker_id} no longer holds job #{job_id} attempt {attempt} "
                f"(job is {job.status}, attempt {job.attempt})"
            )
        return job

    def started(
        self, job_id: int, worker_id: str, attempt: int, pid: int, *, run_dir: str, hostname: str
    ) -> JobView:
        """Record that the job's process runs; the job's run starts with it."""

        def decide(reader: ViewReader) -> list[Pending]:
            job = self._held(reader, job_id, worker_id, attempt)
            run = RunStarted(
                run_id=job.run_id,
                run_dir=run_dir,
                name=job.name,
                job_id=job.id,
                config=job.config,
                tags=job.tags,
                hostname=hostname,
                pid=pid,
            )
            return [
                Pending(
                    job_stream(job_id),
                    JobStarted(job_id=job_id, worker_id=worker_id, attempt=attempt, pid=pid),
                ),
                Pending(run_stream(job.run_id), run),
            ]

        self.store.transact(decide)
        return self.get(job_id)

    def heartbeat(self, job_id: int, worker_id: str, attempt: int, lease_seconds: float) -> JobView:
        """Renew the lease; the returned view tells whether a cancel was requested."""

        def decide(reader: ViewReader) -> list[Pending]:
            self._held(reader, job_id, worker_id, attempt)
            expires = self.clock() + timedelta(seconds=lease_seconds)
            event = JobHeartbeat(
                job_id=job_id, worker_id=worker_id, attempt=attempt, lease_expires_at=expires
            )
            return [Pending(job_stream(job_id), event)]

        self.store.transact(decide)
        return self.get(job_id)

    def finish(
        self,
        job_id: int,
        worker_id: str,
        attempt: int,
        exit_code: int | None,
        *,
        error: str | None = None,
        outcome: Outcome | None = None,
    ) -> JobView:
        """End the attempt ``worker_id`` holds. The outcome follows from the exit code and a
        pending cancel unless given (``timed_out``, or ``failed`` for a job that could not
        start). A stale attempt raises ``LeaseLost`` and changes nothing."""

        def decide(reader: ViewReader) -> list[Pending]:
            job = self._held(reader, job_id, worker_id, attempt)
            final = outcome or outcome_for(job, exit_code)
            return _end(job, final, worker_id=worker_id, exit_code=exit_code, error=error)

        self.store.transact(decide)
        return self.get(job_id)

    # -- the user side ------------------------------------------------------
    def cancel(self, job_id: int, reason: str = "cancelled by user") -> tuple[str, JobView]:
        """Cancel a queued job now, or ask a running job's worker to stop it.

        Returns the previous status and the job as it is after the request."""
        previous: list[str] = []

        def decide(reader: ViewReader) -> list[Pending]:
            job = reader.job(job_id)
            if job is None:
                raise NotFound(f"no job #{job_id}")
            previous.append(job.status)
            if isinstance(job.state, Queued):
                return _end(job, "cancelled", error=reason)
            if isinstance(job.state, Running):
                if job.cancel_requested:
                    return []
                return [
                    Pending(job_stream(job_id), JobCancelRequested(job_id=job_id, reason=reason))
                ]
            raise InvalidState(f"job #{job_id} already ended ({job.status}); nothing to cancel")

        self.store.transact(decide)
        return previous[0], self.get(job_id)

    def cancel_all_queued(self, reason: str = "cancelled by user") -> list[int]:
        """Cancel every queued job at once; returns their ids."""

        def decide(reader: ViewReader) -> list[Pending]:
            events: list[Pending] = []
            for job in reader.jobs(["queued"]):
                events += _end(job, "cancelled", error=reason)
            return events

        recorded = self.store.transact(decide)
        return sorted(r.event.job_id for r in recorded if isinstance(r.event, JobFinished))

    def retry(self, job_id: int) -> JobView:
        """Queue a new job with the command of a failed, cancelled or timed-out one."""
        job = self.get(job_id)
        if job.status not in ("failed", "cancelled", "timed_out"):
            raise InvalidState(
                f"job #{job_id} is {job.status}; only failed, cancelled or "
                "timed-out jobs can be retried"
            )
        return self.submit(
            job.command_argv,
            job.workdir,
            name=job.name,
            config=job.config,
            tags=job.tags,
            parent_job_id=job.id,
            first_attempt=job.attempt + 1,
            max_attempts=job.max_attempts,
            priority=job.priority,
            env=job.env,
            check=False,
        )

    def requeue_expired(self) -> list[JobView]:
        """Requeue running jobs whose lease ran out (their worker is gone), or end them when
        no attempt is left or a cancel was pending. Any live worker calls this."""
        now = self.clock()
        if not self.store.expired_leases(now):
            return []  # the common case: a cheap read, no write lock

        def decide(reader: ViewReader) -> list[Pending]:
            events: list[Pending] = []
            for job in reader.expired_leases(now):
                holder = job.worker_id or ""
                lost = f"worker {holder} lost (lease expired) during attempt {job.attempt}"
                if job.cancel_requested:
                    events += _end(job, "cancelled", worker_id=holder, error=lost)
                elif job.attempts_left <= 0:
                    events += _end(
                        job, "failed", worker_id=holder, error=f"{lost}; no attempts left"
                    )
                else:
                    events.append(
                        Pending(
                            job_stream(job.id),
                            JobRequeued(
                                job_id=job.id, attempt=job.attempt, worker_id=holder, reason=lost
                            ),
                        )
                    )
                    if job.started_at is not None:
                        events.append(
                            Pending(
                                run_stream(job.run_id),
                                RunFinished(run_id=job.run_id, status="crashed", error=lost),
                            )
                        )
            return events

        recorded = self.store.transact(decide)
        ids = sorted({getattr(r.event, "job_id", 0) for r in recorded} - {0})
        return [self.get(i) for i in ids]


def _end(
    job: JobView,
    outcome: Outcome,
    *,
    worker_id: str = "",
    exit_code: int | None = None,
    error: str | None = None,
) -> list[Pending]:
    """The events that end ``job`` with ``outcome`` (and its run, if it started)."""
    events = [
        Pending(
            job_stream(job.id),
            JobFinished(
                job_id=job.id,
                attempt=job.attempt,
                outcome=outcome,
                worker_id=worker_id,
                exit_code=exit_code,
                error=error,
            ),
        )
    ]
    if isinstance(job.state, Running) and job.state.started_at is not None:
        events.append(
            Pending(
                run_stream(job.run_id),
                RunFinished(run_id=job.run_id, status=outcome, exit_code=exit_code, error=error),
            )
        )
    assert not isinstance(job.state, Ended)
    return events
