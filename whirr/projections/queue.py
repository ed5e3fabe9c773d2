"""The claim policy: which queued job a worker takes next, on which GPUs. Pure: no I/O, and
the time comes in as an argument.

Every claim (local worker, HTTP claim, any store) goes through ``pick``:

* **Resources.** A worker offers GPU ids and CPU-only *slots*. A job needs ``gpus`` GPUs (its
  own number, or by default 1 on a worker with GPUs and 0 elsewhere); it gets that many of
  the worker's free GPUs exclusively, and a job that needs no GPU takes a slot instead, so
  CPU-only jobs never hold a GPU.
* **Order.** Ready jobs are considered by priority (higher first), then id (FIFO); the first
  one that fits what is free now is chosen. A job is ready when it is queued, not being
  cancelled, not waiting on a dependency and past its retry backoff.
* **No starvation.** Choosing "the first that fits" alone lets a stream of small GPU jobs
  hold a big one back forever. So a job that fits the worker but not its free GPUs, and has
  waited ``reserve_after`` seconds, *reserves*: no job behind it takes a GPU on this worker
  until it starts (CPU-only jobs still use the slots, which it does not need). Before that
  delay, smaller jobs backfill the free GPUs, which keeps utilisation high.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

import msgspec

from whirr.projections.jobs import JobView, Queued, Running
from whirr.projections.workers import WorkerView

#: Seconds a job that does not fit may wait before it reserves GPUs (see the module doc).
RESERVE_AFTER = 300.0


class Capacity(msgspec.Struct, frozen=True):
    """What a worker offers: GPU ids (one job each at a time) and CPU-only job slots."""

    gpu_ids: tuple[int, ...] = ()
    slots: int = 1


class Choice(msgspec.Struct, frozen=True):
    """The job to claim and the GPUs it gets (empty: it takes a CPU slot)."""

    job: JobView
    gpu_ids: tuple[int, ...] = ()


def claim_order(job: JobView) -> tuple[int, int]:
    """Sort key: higher priority first, then first-in first-out."""
    return (-job.priority, job.id)


def gpus_needed(job: JobView, capacity: Capacity) -> int:
    """GPUs ``job`` needs on a worker offering ``capacity`` (its default depends on it)."""
    return _need(job.gpus, capacity)


def _need(gpus: int | None, capacity: Capacity) -> int:
    if gpus is not None:
        return gpus
    return 1 if capacity.gpu_ids else 0


def fits(job: JobView, capacity: Capacity) -> bool:
    """True when ``job`` could ever run on a worker offering ``capacity``."""
    return fits_gpus(job.gpus, capacity)


def fits_gpus(gpus: int | None, capacity: Capacity) -> bool:
    """True when a job asking for ``gpus`` (None: the default) could ever run on a
    worker offering ``capacity``."""
    need = _need(gpus, capacity)
    return need <= len(capacity.gpu_ids) if need else capacity.slots > 0


def is_ready(job: JobView, now: datetime | None) -> bool:
    """Queued, not held, not being cancelled, no dependency pending and past any retry
    backoff.

    ``now`` None ignores the backoff (used for cheap "anything to do?" checks)."""
    state = job.state
    if not isinstance(state, Queued) or job.cancel_requested or job.waiting_on or job.held:
        return False
    return now is None or state.not_before is None or state.not_before <= now


def free_capacity(capacity: Capacity, held: Iterable[JobView]) -> Capacity:
    """What is left of ``capacity`` while the worker runs the ``held`` jobs."""
    busy: set[int] = set()
    slots_used = 0
    for job in held:
        state = job.state
        gpu_ids = state.gpu_ids if isinstance(state, Running) else []
        if gpu_ids:
            busy.update(gpu_ids)
        else:
            slots_used += 1
    return Capacity(
        gpu_ids=tuple(g for g in capacity.gpu_ids if g not in busy),
        slots=max(0, capacity.slots - slots_used),
    )


def both_free(first: Capacity, second: Capacity) -> Capacity:
    """What is free by two counts at once (the worker's own and the server's view)."""
    return Capacity(
        gpu_ids=tuple(g for g in first.gpu_ids if g in second.gpu_ids),
        slots=min(first.slots, second.slots),
    )


def pick(
    candidates: Iterable[JobView],
    capacity: Capacity | None = None,
    free: Capacity | None = None,
    now: datetime | None = None,
    reserve_after: float = RESERVE_AFTER,
) -> Choice | None:
    """The job a worker offering ``capacity``, of which ``free`` is unused (default: all),
    should claim next among ``candidates``, with the GPUs it gets; None when nothing fits.

    The GPUs given are the lowest free ids: deterministic, and it keeps high ids free for
    the bigger sets that come later.
    """
    capacity = Capacity() if capacity is None else capacity
    free = capacity if free is None else free
    reserved = False
    for job in sorted(candidates, key=claim_order):
        if not is_ready(job, now) or not fits(job, capacity):
            continue
        need = gpus_needed(job, capacity)
        if need == 0:
            if free.slots > 0:
                return Choice(job, ())
            continue
        if reserved:
            continue
        if need <= len(free.gpu_ids):
            return Choice(job, tuple(sorted(free.gpu_ids)[:need]))
        if now is not None and _waited(job, now) >= reserve_after:
            reserved = True  # it fits once enough GPUs free up: keep them for it
    return None


def unschedulable(job: JobView, workers: Iterable[WorkerView]) -> str | None:
    """Why no worker among ``workers`` (the live ones) can ever run ``job``, or None.

    With no live worker at all nothing is reported: any worker started later may fit."""
    live = list(workers)
    if not live or not isinstance(job.state, Queued):
        return None
    if any(fits(job, Capacity(tuple(w.gpu_ids), w.slots)) for w in live):
        return None
    need = job.gpus if job.gpus is not None else 1
    most = max(len(w.gpu_ids) for w in live)
    if job.gpus == 0 or (job.gpus is None and most == 0):
        return "needs a CPU slot; no live worker has one (all started with --slots 0)"
    return f"needs {need} GPU(s); the largest live worker has {most}"


def _waited(job: JobView, now: datetime) -> float:
    state = job.state
    assert isinstance(state, Queued)
    start = state.not_before or state.since
    return (now - start).total_seconds()
