"""Claims group-committed in one batch (PostgreSQL): they share one read of the claim
candidates (claim_window.py), and must still each get what a claim of its own would."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from functools import partial
from typing import Any

import pytest
from store_backends import Backend

from whirr.projections import JobView
from whirr.projections.queue import Capacity
from whirr.services import Jobs
from whirr.store.postgres import PostgresStore
from whirr.store.postgres.claim_window import SPARE

pytestmark = pytest.mark.postgres


@pytest.fixture
def store(postgres_backend: Backend) -> Any:
    assert postgres_backend.url is not None
    store = PostgresStore(postgres_backend.url)
    yield store
    store.close()


def _one_batch(store: PostgresStore, calls: Sequence[Callable[[], Any]]) -> list[Any]:
    """Run ``calls`` (each one transaction) in one batch, in this order: a decision holds
    the writer until every call has queued its decision behind it, and they join its
    batch (decisions queued while a batch decides join it)."""
    holding, release = threading.Event(), threading.Event()

    def hold(reader: Any) -> list[Any]:
        holding.set()
        release.wait(60)
        return []

    held = threading.Thread(target=store.transact, args=(hold,))
    held.start()
    assert holding.wait(60)
    writer = store._writer
    assert writer is not None
    results: list[Any] = [None] * len(calls)

    def run(i: int) -> None:
        results[i] = calls[i]()

    threads = []
    for i in range(len(calls)):
        threads.append(threading.Thread(target=run, args=(i,)))
        threads[-1].start()
        _until(partial(_queued, writer, i + 1))
    release.set()
    for t in [held, *threads]:
        t.join(60)
    return results


def _queued(writer: Any, n: int) -> bool:
    return bool(writer._queue.qsize() == n)


def _until(condition: Callable[[], bool], timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.001)


def _ids(claimed: list[JobView | None]) -> list[int | None]:
    return [job.id if job is not None else None for job in claimed]


def test_claims_in_one_batch_take_the_queue_in_claim_order(store: PostgresStore) -> None:
    jobs = Jobs(store)
    for i in range(1, 31):
        jobs.submit(["true"], "/", check=False, priority=i % 3)
    order = sorted(range(1, 31), key=lambda i: (-(i % 3), i))
    claimed = _one_batch(store, [partial(jobs.claim, f"w{n}", 60) for n in range(12)])
    assert _ids(claimed) == order[:12]


def test_a_job_queued_within_the_batch_is_seen_by_the_next_claim(store: PostgresStore) -> None:
    jobs = Jobs(store)
    for _ in range(5):
        jobs.submit(["true"], "/", check=False)
    results = _one_batch(
        store,
        [
            lambda: jobs.claim("a", 60),
            lambda: jobs.submit(["true"], "/", check=False, priority=5),  # job 6, first in line
            lambda: jobs.claim("b", 60),
            lambda: jobs.claim("c", 60),
        ],
    )
    assert _ids([results[0], results[2], results[3]]) == [1, 6, 2]


def test_a_job_requeued_within_the_batch_is_seen_by_the_next_claim(store: PostgresStore) -> None:
    jobs = Jobs(store)
    for _ in range(3):
        jobs.submit(["true"], "/", check=False, retries=1, retry_delay=0)
    first = jobs.claim("a", 60)
    assert first is not None and first.id == 1
    results = _one_batch(
        store,
        [
            lambda: jobs.claim("b", 60),
            lambda: jobs.finish(1, "a", 1, 1),  # fails, retried at once: queued again
            lambda: jobs.claim("c", 60),
        ],
    )
    assert results[1].status == "queued"
    assert _ids([results[0], results[2]]) == [2, 1]


def test_more_claims_than_the_window_spares_each_get_the_next_job(store: PostgresStore) -> None:
    jobs = Jobs(store)
    count = 64 + 2 * SPARE + 10
    for _ in range(count):
        jobs.submit(["true"], "/", check=False)
    claims = 2 * SPARE + 5
    claimed = _one_batch(store, [partial(jobs.claim, f"w{n}", 60) for n in range(claims)])
    assert _ids(claimed) == list(range(1, claims + 1))


def test_a_claim_sees_past_a_window_its_batch_used_up(store: PostgresStore) -> None:
    """A CPU job behind a full window of GPU jobs: once the batch's GPU claims took
    enough of them, the CPU claim's own query would reach it, so the batch's must too."""
    jobs = Jobs(store)
    gpu_jobs = 64 + SPARE
    for _ in range(gpu_jobs):
        jobs.submit(["true"], "/", check=False, gpus=1, priority=1)
    cpu_job = jobs.submit(["true"], "/", check=False, gpus=0).id
    gpu, cpu = Capacity(gpu_ids=(0,), slots=0), Capacity()
    calls = [partial(jobs.claim, f"g{n}", 60, gpu) for n in range(SPARE + 1)]
    calls.append(partial(jobs.claim, "c", 60, cpu))
    claimed = _ids(_one_batch(store, calls))
    assert claimed == [*range(1, SPARE + 2), cpu_job]


def test_claims_beyond_the_queue_get_nothing(store: PostgresStore) -> None:
    jobs = Jobs(store)
    for _ in range(3):
        jobs.submit(["true"], "/", check=False)
    claimed = _one_batch(store, [partial(jobs.claim, f"w{n}", 60) for n in range(5)])
    assert _ids(claimed) == [1, 2, 3, None, None]
    assert [store.job(i).status for i in (1, 2, 3)] == ["running"] * 3  # type: ignore[union-attr]
