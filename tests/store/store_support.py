"""Helpers for the store contract suite: events, a settable clock, threads, fold checks."""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

from whirr.events import JobSubmitted, Pending, WorkerSeen, job_stream, worker_stream
from whirr.projections import QueueView, fold
from whirr.projections.queue_state import QUEUE_KEY
from whirr.projections.run_manage import DELETED
from whirr.store import EventStore

T = TypeVar("T")


class Clock:
    """A clock that moves only when told (leases expire on demand)."""

    def __init__(self) -> None:
        self.now = datetime(2030, 1, 1, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        """Move time forward."""
        self.now += timedelta(seconds=seconds)


def seen(worker_id: str) -> Pending:
    """A small event on the worker's stream."""
    return Pending(worker_stream(worker_id), WorkerSeen(worker_id=worker_id))


def job_submitted(job_id: int) -> Pending:
    """A submit event for ``job_id`` (as the service would write it)."""
    event = JobSubmitted(job_id=job_id, command_argv=["true"], workdir="/", run_id=f"job-{job_id}")
    return Pending(job_stream(job_id), event)


def run_threads(work: list[Callable[[], T]], timeout: float = 120) -> list[T]:
    """Run each callable in its own thread, started together; re-raise the first error."""
    results: list[Any] = [None] * len(work)
    errors: list[BaseException] = []
    start = threading.Barrier(len(work))

    def runner(i: int) -> None:
        try:
            start.wait()
            results[i] = work[i]()
        except BaseException as exc:  # handed to the test thread below
            errors.append(exc)

    threads = [threading.Thread(target=runner, args=(i,)) for i in range(len(work))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout)
    if errors:
        raise errors[0]
    assert not any(t.is_alive() for t in threads), "a thread did not finish"
    return results


def views(store: EventStore) -> dict[str, Any]:
    """Everything the view readers show, for before/after comparisons."""
    runs = store.runs()
    return {
        "head": store.head(),
        "jobs": store.jobs(),
        "job_by_id": [store.job(j.id) for j in store.jobs()],
        "claimable": store.claimable_jobs(1000),
        "counts": store.job_counts(),
        "max_job_id": store.max_job_id(),
        "runs": runs,
        "run_by_id": [store.run(r.id) for r in runs],
        "workers": store.workers(),
        "worker_by_id": [store.worker(w.id) for w in store.workers()],
        "queue": store.queue_state(),
    }


def snapshot_matches_fold(store: EventStore) -> bool:
    """True when the store's views equal a pure replay of its own log."""
    folded = fold(store.read())
    # Cleaned jobs and deleted runs stay in the folded views (a cleaned job keeps its id,
    # a deleted run its tombstone) but no reader lists them.
    jobs = sorted((j for j in folded["jobs"].values() if not j.cleaned), key=lambda j: -j.id)
    live_runs = (r for r in folded["runs"].values() if r.status != DELETED)
    runs = sorted(live_runs, key=lambda r: (r.started_at, r.version), reverse=True)
    workers = sorted(folded["workers"].values(), key=lambda w: w.id)
    queue = folded["queue"].get(QUEUE_KEY, QueueView())
    return (store.jobs(), store.runs(), store.workers(), store.queue_state()) == (
        jobs,
        runs,
        workers,
        queue,
    )
