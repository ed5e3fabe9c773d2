"""How a job's attempt ends: for good (and what that means for the jobs waiting on it), or
with a retry after a backoff. Used inside the decisions of ``Jobs`` (a store transaction).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta

from whirr.events import (
    JobDependencyEnded,
    JobDependentAdded,
    JobFinished,
    JobRetryScheduled,
    JobUsage,
    Outcome,
    Pending,
    RunFinished,
    RunOutcome,
    job_stream,
    run_stream,
)
from whirr.projections import JobView
from whirr.projections.jobs import Ended, Queued, Running
from whirr.store import ViewReader

#: The longest a retry backs off, however many attempts failed before.
MAX_RETRY_DELAY = 3600.0


def retry_due(job: JobView, outcome: Outcome) -> bool:
    """True when a failed attempt of ``job`` is retried rather than ending the job."""
    return outcome == "failed" and job.failed_attempts < job.retries


def retry_delay(job: JobView) -> float:
    """Exponential backoff: ``retry_delay`` doubled for each retry already made."""
    return min(MAX_RETRY_DELAY, job.retry_delay * 2**job.failed_attempts)


def run_ended(
    job: JobView, status: RunOutcome, *, exit_code: int | None = None, error: str | None = None
) -> list[Pending]:
    """The event that ends the job's run, if the current attempt's process had started
    (a job cancelled while queued, or one that never started, has no run to end)."""
    if not (isinstance(job.state, Running) and job.state.started_at is not None):
        return []
    event = RunFinished(run_id=job.run_id, status=status, exit_code=exit_code, error=error)
    return [Pending(run_stream(job.run_id), event)]


def schedule_retry(
    job: JobView,
    now: datetime,
    *,
    worker_id: str,
    exit_code: int | None,
    error: str | None,
    usage: JobUsage | None = None,
) -> list[Pending]:
    """The events that requeue ``job`` for its next attempt after the backoff."""
    not_before = now + timedelta(seconds=retry_delay(job))
    events = [
        Pending(
            job_stream(job.id),
            JobRetryScheduled(
                job_id=job.id,
                attempt=job.attempt,
                worker_id=worker_id,
                not_before=not_before,
                exit_code=exit_code,
                error=error,
                usage=usage,
            ),
        )
    ]
    return events + run_ended(job, "failed", exit_code=exit_code, error=error)


def end(
    reader: ViewReader,
    job: JobView,
    outcome: Outcome,
    *,
    worker_id: str = "",
    exit_code: int | None = None,
    error: str | None = None,
    ended: set[int] | None = None,
    usage: JobUsage | None = None,
) -> list[Pending]:
    """The events that end ``job`` with ``outcome`` (and its run, if it started), and tell
    the jobs waiting on it; those that needed it to complete are cancelled, transitively.

    ``ended`` collects the jobs ended in the current transaction, so that a job reached
    twice (two of its dependencies end at once) is ended once.
    """
    assert not isinstance(job.state, Ended)
    ended = set() if ended is None else ended
    ended.add(job.id)
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
                usage=usage,
            ),
        )
    ]
    events += run_ended(job, outcome, exit_code=exit_code, error=error)
    for dependent_id in job.dependents:
        dependent = reader.job(dependent_id)
        if (
            dependent is None
            or dependent_id in ended
            or job.id not in dependent.waiting_on
            or not isinstance(dependent.state, Queued)
        ):
            continue
        events.append(
            Pending(
                job_stream(dependent_id),
                JobDependencyEnded(job_id=dependent_id, dependency_id=job.id, outcome=outcome),
            )
        )
        if outcome != "completed" and not dependent.after_any:
            reason = f"dependency #{job.id} {_past(outcome)}"
            events += end(reader, dependent, "cancelled", error=reason, ended=ended)
    return events


def link_dependencies(
    job_id: int, dependencies: Sequence[JobView | None], after_any: bool, attempt: int
) -> list[Pending]:
    """The events that make a new job wait on ``dependencies`` (existing jobs): each one
    still going learns of its new dependent; one already ended is recorded as such, and
    one that did not complete cancels the new job at once (unless ``after_any``)."""
    events: list[Pending] = []
    failed: str | None = None
    for dep in dependencies:
        assert dep is not None
        if isinstance(dep.state, Ended):
            outcome = dep.state.outcome
            ended = JobDependencyEnded(job_id=job_id, dependency_id=dep.id, outcome=outcome)
            events.append(Pending(job_stream(job_id), ended))
            if outcome != "completed" and not after_any and failed is None:
                failed = f"dependency #{dep.id} {_past(outcome)}"
        else:
            added = JobDependentAdded(job_id=dep.id, dependent_id=job_id)
            events.append(Pending(job_stream(dep.id), added))
    if failed is not None:
        cancel = JobFinished(job_id=job_id, attempt=attempt, outcome="cancelled", error=failed)
        events.append(Pending(job_stream(job_id), cancel))
    return events


def _past(outcome: Outcome) -> str:
    return {"timed_out": "timed out"}.get(outcome, outcome)
