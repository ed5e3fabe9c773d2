"""The claim policy: which queued job a worker should take next. Pure: no I/O, no clock."""

from __future__ import annotations

from collections.abc import Iterable

from whirr.projections.jobs import JobView, Queued


def claim_order(job: JobView) -> tuple[int, int]:
    """Sort key: higher priority first, then first-in first-out."""
    return (-job.priority, job.id)


def pick(candidates: Iterable[JobView]) -> JobView | None:
    """The job to hand out next among ``candidates``, or None if none is claimable.

    A queued job whose cancel was requested is skipped (the cancel will end it).
    """
    best: JobView | None = None
    for job in candidates:
        if not isinstance(job.state, Queued) or job.cancel_requested:
            continue
        if best is None or claim_order(job) < claim_order(best):
            best = job
    return best
