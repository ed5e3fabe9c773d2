"""What a worker started with ``--exit-when-empty`` says when it stops while jobs are
still queued that it can never run (a ``--gpus 1`` job and a CPU-only worker): which
jobs, what they need and what this worker offers, instead of "queue empty"."""

from __future__ import annotations

from typing import NamedTuple

from whirr.projections.queue import Capacity

#: Jobs named one by one in the message; more are counted.
NAMED = 5


class Unrunnable(NamedTuple):
    """A queued job no worker offering this worker's capacity could ever run."""

    job_id: int
    #: GPUs the job asked for (None: the default, one GPU where a worker has some).
    gpus: int | None


def drained_reason(left: list[Unrunnable]) -> str:
    """The worker's stop reason (also its ``worker.stopped`` event's)."""
    return "drained (nothing queued it can run)" if left else "drained (queue empty)"


def leftover_note(left: list[Unrunnable], capacity: Capacity) -> str:
    """One line: the queued jobs this worker cannot take, and why."""
    named = ", ".join(f"#{job.job_id} ({_need(job)})" for job in left[:NAMED])
    more = f" and {len(left) - NAMED} more" if len(left) > NAMED else ""
    gpus = len(capacity.gpu_ids)
    offer = f"{gpus} GPU(s)" if gpus else "no GPUs"
    offer += f" and {capacity.slots} CPU slot(s)"
    return (
        f"{len(left)} queued job(s) need more than this worker offers ({offer}): "
        f"{named}{more}. Start a worker with enough GPUs (whirr worker --gpus N) "
        "to run them."
    )


def _need(job: Unrunnable) -> str:
    if job.gpus:
        return f"needs {job.gpus} GPU{'s' if job.gpus != 1 else ''}"
    return "needs a CPU slot"
