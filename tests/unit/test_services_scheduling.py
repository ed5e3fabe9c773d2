"""Scheduling decisions of the services on the in-memory store and on SQLite: GPU sets,
priorities, dependencies and their cascade, retries with backoff, timeouts, pause, drain."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from whirr.events import JobRetryScheduled
from whirr.projections.jobs import Queued
from whirr.projections.queue import Capacity
from whirr.services import InvalidRequest, InvalidState, Jobs, NotFound, Queue, Workers
from whirr.store.memory import MemoryStore
from whirr.store.sqlite import SQLiteStore


class FakeClock:
    """A clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = datetime(2026, 1, 1, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture(params=["memory", "sqlite"])
def store(request, clock: FakeClock, tmp_path: Path) -> Iterator[object]:
    s = (
        MemoryStore(clock=clock)
        if request.param == "memory"
        else SQLiteStore(str(tmp_path / "w.db"), clock=clock)
    )
    yield s
    s.close()


@pytest.fixture
def jobs(store, clock: FakeClock) -> Jobs:
    return Jobs(store, clock=clock, reserve_after=60)


def submit(jobs: Jobs, **kwargs) -> int:
    return jobs.submit(["true"], "/", check=False, **kwargs).id


def run(jobs: Jobs, job_id: int, exit_code: int, worker: str = "w") -> None:
    job = jobs.get(job_id)
    assert job.worker_id == worker and job.status == "running"
    jobs.started(job_id, worker, job.attempt, 1, run_dir="/r", hostname="h")
    jobs.finish(job_id, worker, job.attempt, exit_code)


def test_gpu_sets_are_exclusive_and_cpu_jobs_take_slots(jobs: Jobs, store) -> None:
    Workers(store).register("w", "h", gpu_ids=[0, 1, 2, 3], slots=1)
    two, one, cpu, cpu2, three = (
        submit(jobs, gpus=2),
        submit(jobs),
        submit(jobs, gpus=0),
        submit(jobs, gpus=0),
        submit(jobs, gpus=3),
    )
    got = {j.id: j.state.gpu_ids for j in iter(lambda: jobs.claim("w", 60), None)}  # type: ignore[union-attr]
    assert got == {two: [0, 1], one: [2], cpu: []}  # GPU 3 left; 3-GPU job does not fit
    run(jobs, two, 0)
    claimed = jobs.claim("w", 60)
    assert claimed is not None and claimed.id == three
    assert claimed.state.gpu_ids == [0, 1, 3]  # type: ignore[union-attr]
    assert jobs.get(cpu2).status == "queued"


def test_unregistered_worker_gets_one_cpu_slot_and_no_gpu_jobs(jobs: Jobs) -> None:
    big, plain = submit(jobs, gpus=1), submit(jobs)
    assert jobs.claim("w", 60).id == plain  # type: ignore[union-attr]
    assert jobs.claim("w", 60, Capacity((5,), 1)).id == big  # type: ignore[union-attr]
    assert jobs.get(big).state.gpu_ids == [5]  # type: ignore[union-attr]


def test_priorities_then_fifo_and_priority_change(jobs: Jobs, store) -> None:
    a, b, c = submit(jobs), submit(jobs, priority=5), submit(jobs)
    Queue(store).set_priority(c, 10)
    assert [jobs.claim("w", 60).id for _ in range(3)] == [c, b, a]  # type: ignore[union-attr]
    with pytest.raises(InvalidState):
        Queue(store).set_priority(a, 1)
    with pytest.raises(NotFound):
        Queue(store).set_priority(99, 1)


def test_dependencies_wait_and_failure_cascades(jobs: Jobs) -> None:
    first = submit(jobs)
    second = submit(jobs, after=[first], priority=9)
    third = submit(jobs, after=[second])
    anyway = submit(jobs, after=[first], after_any=True)
    assert jobs.get(second).waiting_on == [first]
    assert jobs.claim("w", 60).id == first  # type: ignore[union-attr]
    assert jobs.claim("w2", 60) is None  # the rest wait on job 1
    run(jobs, first, 3)
    assert (jobs.get(second).status, jobs.get(second).error) == (
        "cancelled",
        f"dependency #{first} failed",
    )
    assert jobs.get(third).error == f"dependency #{second} cancelled"
    assert jobs.claim("w", 60).id == anyway  # type: ignore[union-attr]


def test_dependency_completed_releases_and_submit_checks(jobs: Jobs) -> None:
    first = submit(jobs)
    assert jobs.claim("w", 60).id == first  # type: ignore[union-attr]
    run(jobs, first, 0)
    done_before = submit(jobs, after=[first])
    assert jobs.get(done_before).waiting_on == []
    assert jobs.claim("w", 60).id == done_before  # type: ignore[union-attr]
    jobs.cancel(queued := submit(jobs))
    late = submit(jobs, after=[queued])
    assert jobs.get(late).status == "cancelled"
    with pytest.raises(InvalidRequest, match="no such job"):
        submit(jobs, after=[999])


def test_cancel_all_queued_ends_each_job_once(jobs: Jobs) -> None:
    a = submit(jobs)
    b = submit(jobs, after=[a])
    submit(jobs, after=[a, b])
    assert jobs.cancel_all_queued() == [1, 2, 3]


def test_failed_attempt_is_retried_with_backoff(jobs: Jobs, store, clock: FakeClock) -> None:
    job_id = submit(jobs, retries=2, retry_delay=10)
    for attempt, delay in [(1, 10), (2, 20)]:
        assert jobs.claim("w", 60).id == job_id  # type: ignore[union-attr]
        run(jobs, job_id, 1)
        job = jobs.get(job_id)
        assert (job.status, job.attempt, job.failed_attempts) == ("queued", attempt + 1, attempt)
        assert isinstance(job.state, Queued) and job.state.not_before == clock() + timedelta(
            seconds=delay
        )
        assert jobs.claim("w", 60) is None  # backing off
        assert store.claimable_jobs(10, clock()) == []
        clock.advance(delay)
    assert jobs.claim("w", 60).id == job_id  # type: ignore[union-attr]
    run(jobs, job_id, 1)
    job = jobs.get(job_id)
    assert (job.status, job.attempt) == ("failed", 3)
    retried = [r.event for r in store.read(types=["job.retry_scheduled"])]
    assert [e.attempt for e in retried if isinstance(e, JobRetryScheduled)] == [1, 2]


def test_retries_do_not_eat_worker_loss_attempts(jobs: Jobs, clock: FakeClock) -> None:
    job_id = submit(jobs, retries=1, retry_delay=0, max_attempts=2)
    jobs.claim("w", 60)
    run(jobs, job_id, 1)
    assert jobs.get(job_id).attempts_left == 1
    jobs.claim("w", 5)
    clock.advance(10)
    jobs.requeue_expired()
    job = jobs.get(job_id)
    assert (job.status, job.attempt) == ("queued", 3)


def test_timed_out_and_spawn_failures_are_final(jobs: Jobs) -> None:
    job_id = submit(jobs, retries=3, timeout_seconds=5)
    job = jobs.claim("w", 60)
    assert job is not None and job.timeout_seconds == 5
    jobs.finish(job_id, "w", 1, -15, outcome="timed_out", error="timed out after 5s")
    assert jobs.get(job_id).status == "timed_out"


def test_paused_queue_and_draining_worker_claim_nothing(jobs: Jobs, store) -> None:
    queue = Queue(store)
    job_id = submit(jobs)
    assert queue.pause("maintenance") and not queue.pause()
    assert queue.state().paused and queue.state().reason == "maintenance"
    assert jobs.claim("w", 60) is None
    assert queue.resume() and not queue.resume()
    workers = Workers(store)
    workers.register("d", "h")
    assert workers.drain("d").status == "draining"
    assert jobs.claim("d", 60) is None
    assert jobs.claim("w", 60).id == job_id  # type: ignore[union-attr]
    with pytest.raises(NotFound):
        workers.drain("nobody")


def test_blocked_jobs_do_not_fill_the_claim_window(jobs: Jobs, store) -> None:
    """More blocked high-priority jobs than the window holds must not hide a ready one."""
    from whirr.services.jobs import CLAIM_WINDOW

    head = submit(jobs)
    for _ in range(CLAIM_WINDOW + 2):
        submit(jobs, after=[head], priority=5)
    assert jobs.claim("w", 60).id == head  # type: ignore[union-attr]
    ready = submit(jobs)
    assert jobs.claim("w", 60).id == ready  # type: ignore[union-attr]


def test_sqlite_migrates_a_version_1_database(tmp_path: Path) -> None:
    import apsw

    from whirr.store.sql import load_queries
    from whirr.store.sqlite.store import SCHEMA_VERSION as SQLITE_SCHEMA_VERSION

    path = tmp_path / "old.db"
    conn = apsw.Connection(str(path))
    conn.execute(load_queries("whirr.store.sqlite", "queries.sql")["schema_v1"])
    conn.execute("PRAGMA user_version=1")
    conn.close()
    store = SQLiteStore(str(path))
    try:
        assert store.schema_version() == SQLITE_SCHEMA_VERSION  # every step since v1 ran
        jobs = Jobs(store)
        job_id = submit(jobs, gpus=0)
        assert jobs.claim("w", 60).id == job_id  # type: ignore[union-attr]
        assert not store.queue_state().paused
    finally:
        store.close()
