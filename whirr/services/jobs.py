"""Job decisions: submit, claim, start, heartbeat, finish, cancel, retry, requeue.

Each decision runs inside ``store.transact`` so it reads the views and appends its events
atomically: two workers can never claim the same job, and a stale worker cannot finish a
job whose lease it lost.
"""

from __future__ import annotations

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
    JobUsage,
    Outcome,
    Pending,
    Recorded,
    RunStarted,
    job_stream,
    run_stream,
)
from whirr.events.runs import FilesMode
from whirr.projections import JOBS, JobView
from whirr.projections.jobs import Queued, Running
from whirr.projections.queue import RESERVE_AFTER, Capacity, both_free, free_capacity, pick
from whirr.services.checks import check_runnable, check_scheduling
from whirr.services.errors import InvalidRequest, InvalidState, LeaseLost, NotFound
from whirr.services.lease_grace import LeaseGrace
from whirr.services.outcomes import (
    end,
    link_dependencies,
    retry_due,
    run_ended,
    schedule_retry,
)
from whirr.store import EventStore, ViewReader
from whirr.sweeps import bayes, failfast

#: How many ready jobs the claim policy looks at (the head of the claim order). Jobs
#: waiting on a dependency or a retry backoff are left out by the store's query, so they
#: never fill this window; jobs too big for the claiming worker can, which only matters
#: with more than this many of them ahead of everything that fits.
CLAIM_WINDOW = 64
DEFAULT_MAX_ATTEMPTS = 3
DEFAULT_RETRY_DELAY = 10.0


def as_written(job: JobView, recorded: Sequence[Recorded]) -> JobView:
    """``job`` (as its decision read it) with the decision's own events folded in: the view
    the same transaction wrote, without reading it back (a round trip per decision)."""
    view = job
    for rec in recorded:
        if JOBS.key(rec.event) == job.id:
            view = JOBS.apply(view, rec) or view
    return view


def outcome_for(job: JobView, exit_code: int | None) -> Outcome:
    """How an attempt that exited with ``exit_code`` ends the job."""
    if job.cancel_requested:
        return "cancelled"
    return "completed" if exit_code == 0 else "failed"


class Jobs:
    """The job decisions over one store."""

    def __init__(
        self,
        store: EventStore,
        clock: Callable[[], datetime] = utc_now,
        *,
        reserve_after: float = RESERVE_AFTER,
    ) -> None:
        self.store = store
        self.clock = clock
        self.reserve_after = reserve_after

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
        gpus: int | None = None,
        after: Sequence[int] = (),
        after_any: bool = False,
        retries: int = 0,
        retry_delay: float = DEFAULT_RETRY_DELAY,
        timeout_seconds: float | None = None,
        snapshot: str | None = None,
        memory_bytes: int | None = None,
        cpus: float | None = None,
    ) -> JobView:
        """Queue a command. ``check`` verifies here that it can start (local submits).

        ``after`` names jobs that must end first (completed, or in any way with
        ``after_any``); they must exist already, so dependencies can never form a cycle.
        A dependency that already failed or was cancelled ends the new job ``cancelled``
        at once (unless ``after_any``)."""
        if check:
            check_runnable(argv, workdir)
        elif not argv or not argv[0]:
            raise InvalidRequest("empty command")
        check_scheduling(max_attempts, gpus, retries, retry_delay, timeout_seconds)
        deps = sorted(set(after))

        def decide(reader: ViewReader) -> list[Pending]:
            job_id = reader.max_job_id() + 1
            found = [reader.job(d) for d in deps]
            missing = [f"#{d}" for d, j in zip(deps, found, strict=True) if j is None]
            if missing:
                raise InvalidRequest(f"--after names no such job: {', '.join(missing)}")
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
                gpus=gpus,
                after=deps,
                after_any=after_any,
                retries=retries,
                retry_delay=retry_delay,
                timeout_seconds=timeout_seconds,
                snapshot=snapshot,
                memory_bytes=memory_bytes,
                cpus=cpus,
            )
            return [
                Pending(job_stream(job_id), event),
                *link_dependencies(job_id, found, after_any, first_attempt),
            ]

        recorded = self.store.transact(decide)
        return self.get(recorded[0].event.job_id)  # type: ignore[attr-defined]

    def claim(
        self,
        worker_id: str,
        lease_seconds: float,
        capacity: Capacity | None = None,
        free: Capacity | None = None,
    ) -> JobView | None:
        """Hand the next job that fits to ``worker_id`` with a fresh lease, or None.

        ``capacity`` is what the worker offers; by default what it registered (a worker
        that never registered: one CPU slot). What it already runs is taken off, so the
        answer is the same whichever process asks for it (local worker or HTTP claim).
        ``free`` is what the worker itself counts as free: only what is free by both
        counts is handed out (a job the log still shows running may be gone, and a job
        whose lease the log let lapse may still be stopping). Nothing is handed out
        while the queue is paused or the worker is draining."""
        chosen: list[JobView] = []

        def decide(reader: ViewReader) -> list[Pending]:
            if reader.queue_state().paused:
                return []
            worker = reader.worker(worker_id)
            if worker is not None and worker.draining:
                return []
            offer = capacity
            if offer is None:
                offer = (
                    Capacity(tuple(worker.gpu_ids), worker.slots)
                    if worker is not None
                    else Capacity()
                )
            held = [reader.job(j) for j in worker.current_job_ids] if worker else []
            mine = [
                j
                for j in held
                if j is not None and isinstance(j.state, Running) and j.state.worker_id == worker_id
            ]
            now = self.clock()
            left = free_capacity(offer, mine)
            if free is not None:
                left = both_free(left, free)
            choice = pick(
                reader.claimable_jobs(CLAIM_WINDOW, now), offer, left, now, self.reserve_after
            )
            if choice is None:
                return []
            job = choice.job
            chosen[:] = [job]
            event = JobClaimed(
                job_id=job.id,
                worker_id=worker_id,
                attempt=job.attempt,
                lease_expires_at=now + timedelta(seconds=lease_seconds),
                gpu_ids=list(choice.gpu_ids),
            )
            return [Pending(job_stream(job.id), event)]

        recorded = self.store.transact(decide)
        return as_written(chosen[0], recorded) if recorded else None

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
        self,
        job_id: int,
        worker_id: str,
        attempt: int,
        pid: int,
        *,
        run_dir: str,
        hostname: str,
        files_mode: FilesMode | None = None,
        worker_run_dir: str | None = None,
    ) -> JobView:
        """Record that the job's process runs; the job's run starts with it (its files
        ``shared`` in place or ``shipped`` from ``worker_run_dir``: ``RunStarted``)."""
        held: list[JobView] = []

        def decide(reader: ViewReader) -> list[Pending]:
            job = self._held(reader, job_id, worker_id, attempt)
            held[:] = [job]
            run = RunStarted(
                run_id=job.run_id,
                run_dir=run_dir,
                name=job.name,
                job_id=job.id,
                config=job.config,
                tags=job.tags,
                hostname=hostname,
                pid=pid,
                files_mode=files_mode,
                worker_run_dir=worker_run_dir,
            )
            return [
                Pending(
                    job_stream(job_id),
                    JobStarted(job_id=job_id, worker_id=worker_id, attempt=attempt, pid=pid),
                ),
                Pending(run_stream(job.run_id), run),
            ]

        recorded = self.store.transact(decide)
        return as_written(held[0], recorded)

    def heartbeat(self, job_id: int, worker_id: str, attempt: int, lease_seconds: float) -> JobView:
        """Renew the lease; the returned view tells whether a cancel was requested. A job
        of a sweep with ``early_terminate`` whose metric the pruner stops gets its cancel
        request (reason ``pruned``) with this heartbeat (``whirr.sweeps.bayes``)."""

        held: list[JobView] = []
        prune = bayes.prune_check(self.store, job_id)

        def decide(reader: ViewReader) -> list[Pending]:
            job = self._held(reader, job_id, worker_id, attempt)
            held[:] = [job]
            expires = self.clock() + timedelta(seconds=lease_seconds)
            event = JobHeartbeat(
                job_id=job_id, worker_id=worker_id, attempt=attempt, lease_expires_at=expires
            )
            pending = [Pending(job_stream(job_id), event)]
            if prune and not job.cancel_requested:
                cancel = JobCancelRequested(job_id=job_id, reason=bayes.PRUNED)
                pending.append(Pending(job_stream(job_id), cancel))
            return pending

        recorded = self.store.transact(decide)
        return as_written(held[0], recorded)

    def finish(
        self,
        job_id: int,
        worker_id: str,
        attempt: int,
        exit_code: int | None,
        *,
        error: str | None = None,
        outcome: Outcome | None = None,
        usage: JobUsage | None = None,
    ) -> JobView:
        """End the attempt ``worker_id`` holds. The outcome follows from the exit code and a
        pending cancel unless given (``timed_out``, or ``failed`` for a job that could not
        start). A failed exit with retries left queues the job again (same id, next
        attempt) after a backoff. A stale attempt raises ``LeaseLost`` and changes nothing.
        ``usage``: what the attempt used, recorded with its end. The end of a sweep's
        job applies its fail-fast rule in the same transaction (``whirr.sweeps.failfast``),
        and a bayes sweep's proposes its next point there (``whirr.sweeps.bayes``); a
        pruned job's end records ``pruned`` as its error."""

        held: list[JobView] = []
        if error is None:
            error = bayes.cancel_reason(self.store, job_id)

        def decide(reader: ViewReader) -> list[Pending]:
            job = self._held(reader, job_id, worker_id, attempt)
            held[:] = [job]
            final = outcome or outcome_for(job, exit_code)
            # An explicit outcome (a timeout, a job that could not start) is final; a
            # failed exit is retried while the job has retries left.
            if outcome is None and retry_due(job, final):
                return schedule_retry(
                    job,
                    self.clock(),
                    worker_id=worker_id,
                    exit_code=exit_code,
                    error=error,
                    usage=usage,
                )
            return end(
                reader,
                job,
                final,
                worker_id=worker_id,
                exit_code=exit_code,
                error=error,
                usage=usage,
            )

        decision = failfast.around(self.store, job_id, decide)
        recorded = self.store.transact(bayes.around(self.store, job_id, decision))
        return as_written(held[0], recorded)

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
                return end(reader, job, "cancelled", error=reason)
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
            ended: set[int] = set()
            for job in reader.jobs(["queued"]):
                if job.id not in ended:
                    events += end(reader, job, "cancelled", error=reason, ended=ended)
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
            gpus=job.gpus,
            retries=job.retries,
            retry_delay=job.retry_delay,
            timeout_seconds=job.timeout_seconds,
            snapshot=job.snapshot,
            memory_bytes=job.memory_bytes,
            cpus=job.cpus,
        )

    def requeue_expired(
        self, now: datetime | None = None, grace: LeaseGrace | None = None
    ) -> list[JobView]:
        """Requeue running jobs whose lease ran out (their worker is gone), or end them when
        no attempt is left or a cancel was pending. Any live worker calls this; a server
        passes the time its reaper woke (``now``) and the leases it extended for its own
        pauses (``grace``, ``whirr.services.lease_grace``)."""
        now = self.clock() if now is None else now

        def expired(reader: ViewReader) -> list[JobView]:
            jobs = reader.expired_leases(now)
            return jobs if grace is None else [j for j in jobs if grace.expired(j, now)]

        if not expired(self.store):
            return []  # the common case: a cheap read, no write lock

        def decide(reader: ViewReader) -> list[Pending]:
            events: list[Pending] = []
            ended: set[int] = set()
            for job in expired(reader):
                holder = job.worker_id or ""
                extended = grace.reason(job) if grace is not None else None
                why = "lease expired" if extended is None else f"lease expired after {extended}"
                lost = f"worker {holder} lost ({why}) during attempt {job.attempt}"
                if job.cancel_requested:
                    events += end(
                        reader, job, "cancelled", worker_id=holder, error=lost, ended=ended
                    )
                elif job.attempts_left <= 0:
                    error = f"{lost}; no attempts left"
                    events += end(reader, job, "failed", worker_id=holder, error=error, ended=ended)
                else:
                    events.append(
                        Pending(
                            job_stream(job.id),
                            JobRequeued(
                                job_id=job.id, attempt=job.attempt, worker_id=holder, reason=lost
                            ),
                        )
                    )
                    events += run_ended(job, "crashed", error=lost)
            return events

        recorded = self.store.transact(decide)
        ids = sorted({getattr(r.event, "job_id", 0) for r in recorded} - {0})
        return [self.get(i) for i in ids]
