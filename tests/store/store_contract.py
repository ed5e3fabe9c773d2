"""The store contract: one suite every backend runs (memory, SQLite, PostgreSQL).

A backend's test class subclasses ``StoreContract`` (or ``DurableStoreContract`` when other
processes can open the same log) and provides a ``backend`` fixture (see conftest.py).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence
from datetime import timedelta
from typing import Any

import pytest
from store_concurrency import ConcurrencyContract
from store_poison import PoisonContract
from store_rebuild import RebuildContract
from store_support import (
    Clock,
    job_submitted,
    run_threads,
    seen,
)

from whirr.events import JobSubmitted, Pending, Recorded, WorkerSeen
from whirr.projections import QueueView
from whirr.services import Jobs, Workers
from whirr.services.queue import Queue
from whirr.store import ConflictError, EventStore, ViewReader

WAIT_LONG = 60.0  # a waiter that is woken returns long before this


class StoreContract(RebuildContract, ConcurrencyContract, PoisonContract):
    """Behaviour every store must have."""

    @pytest.fixture
    def store(self, backend: Any) -> EventStore:
        """A handle on the test's (empty) log."""
        return backend.open()  # type: ignore[no-any-return]

    # -- the log -------------------------------------------------------------
    def test_empty_log(self, store: EventStore) -> None:
        assert store.head() == 0
        assert store.read() == []
        assert store.jobs() == []
        assert store.max_job_id() == 0
        assert store.job_counts() == {}

    def test_append_numbers_events_densely_in_order(self, store: EventStore) -> None:
        assert store.append([seen("a"), seen("b")]) == 2
        assert store.append([seen("c")]) == 3
        records = store.read()
        assert [r.position for r in records] == [1, 2, 3]
        assert [r.stream for r in records] == ["worker-a", "worker-b", "worker-c"]
        assert [r.event for r in records] == [WorkerSeen(worker_id=w) for w in "abc"]
        assert all(r.recorded_at.utcoffset() == timedelta(0) for r in records)
        assert records[0].recorded_at == records[1].recorded_at  # one batch, one time
        assert store.head() == 3

    def test_append_of_nothing_returns_the_head(self, store: EventStore) -> None:
        assert store.append([]) == 0
        store.append([seen("a")])
        assert store.append([]) == 1
        assert store.head() == 1

    def test_read_after_and_limit(self, store: EventStore) -> None:
        store.append([seen(str(i)) for i in range(10)])
        assert [r.position for r in store.read(after=7)] == [8, 9, 10]
        assert [r.position for r in store.read(after=2, limit=3)] == [3, 4, 5]
        assert store.read(after=10) == []
        assert store.read(after=0, limit=0) == []
        assert [r.position for r in store.read(limit=1)] == [1]

    def test_read_by_stream_and_types(self, store: EventStore) -> None:
        store.append([job_submitted(1), seen("a"), job_submitted(2), seen("a"), seen("b")])
        assert [r.position for r in store.read(stream="worker-a")] == [2, 4]
        assert [r.position for r in store.read(types=["job.submitted"])] == [1, 3]
        assert [r.position for r in store.read(types=["worker.seen", "job.submitted"])] == [
            1,
            2,
            3,
            4,
            5,
        ]
        assert store.read(types=[]) == []
        assert [r.position for r in store.read(stream="worker-a", after=2)] == [4]
        assert [r.position for r in store.read(types=["worker.seen"], limit=2)] == [2, 4]
        assert store.read(stream="worker-a", types=["job.submitted"]) == []
        assert store.read(stream="nobody") == []

    def test_events_round_trip_exactly(self, store: EventStore) -> None:
        config = {
            "lr": 0.1,
            "huge": 1e300,
            "tiny": 5e-324,
            "neg_zero": -0.0,
            "big_int": 2**62,
            "text": "ünïcödé 😀 'quotes' \"double\" \\ back\nslash",
            "nul": "a\x00b",
            "nested": [1, [2, {"k": None, "t": True}]],
            "empty": {},
        }
        event = JobSubmitted(
            job_id=1,
            command_argv=["python", "-c", "print('hi')"],
            workdir="/tmp/ü",
            run_id="job-1",
            name="name\twith\ttabs",
            config=config,
            tags=["ä", "b c"],
            env={"K": "v=1"},
        )
        store.append([Pending("job-1", event)])
        (rec,) = store.read()
        assert rec.event == event
        assert rec.event.config == config  # type: ignore[attr-defined]
        job = store.job(1)
        assert job is not None
        assert job.config == config
        assert job.tags == ["ä", "b c"]

    # -- conditional appends and transactions ---------------------------------
    def test_conditional_append(self, store: EventStore) -> None:
        assert store.append([seen("a")], expect=0) == 1
        assert store.append([seen("b")], expect=1) == 2
        with pytest.raises(ConflictError) as caught:
            store.append([seen("c")], expect=1)
        assert (caught.value.expected, caught.value.actual) == (1, 2)
        with pytest.raises(ConflictError):
            store.append([], expect=5)
        assert store.head() == 2
        assert [r.event for r in store.read()] == [
            WorkerSeen(worker_id="a"),
            WorkerSeen(worker_id="b"),
        ]

    def test_transact_rolls_back_when_decide_raises(self, store: EventStore) -> None:
        jobs = Jobs(store)
        jobs.submit(["true"], "/", check=False)
        before = (store.read(), store.jobs())

        def decide(reader: ViewReader) -> Sequence[Pending]:
            assert reader.job(1) is not None
            raise RuntimeError("changed my mind")

        with pytest.raises(RuntimeError, match="changed my mind"):
            store.transact(decide)
        assert (store.read(), store.jobs()) == before
        # The store is still usable and positions stay dense.
        assert jobs.submit(["true"], "/", check=False).id == 2
        assert [r.position for r in store.read()] == [1, 2]

    def test_transact_decides_on_current_views(self, store: EventStore) -> None:
        Jobs(store).submit(["true"], "/", check=False)

        def decide(reader: ViewReader) -> Sequence[Pending]:
            assert reader.head() == 1
            job = reader.job(1)
            assert job is not None and job.status == "queued"
            assert [j.id for j in reader.claimable_jobs(10)] == [1]
            return [job_submitted(reader.max_job_id() + 1)]

        (rec,) = store.transact(decide)
        assert rec.position == 2
        assert isinstance(rec, Recorded) and rec.event == job_submitted(2).event
        assert store.read(after=1) == [rec]
        assert store.transact(lambda reader: []) == []
        assert store.head() == 2

    # -- views ---------------------------------------------------------------
    def test_views_follow_each_append(self, store: EventStore) -> None:
        clock = Clock()
        jobs = Jobs(store, clock=clock)
        job = jobs.submit(["true"], "/", check=False, tags=["t"])
        assert store.job(job.id) == job and job.status == "queued"
        claimed = jobs.claim("w1", lease_seconds=30)
        assert claimed is not None and claimed.status == "running"
        assert claimed.lease_expires_at == clock.now + timedelta(seconds=30)
        jobs.started(1, "w1", 1, pid=42, run_dir="/runs/job-1", hostname="h")
        run = store.run("job-1")
        assert run is not None and run.status == "running" and run.pid == 42
        done = jobs.finish(1, "w1", 1, exit_code=0)
        assert done.status == "completed"
        assert store.run("job-1").status == "completed"  # type: ignore[union-attr]
        assert store.job_counts() == {"completed": 1}
        assert store.jobs(["completed"]) == [done]

    def test_job_queries(self, store: EventStore) -> None:
        clock = Clock()
        jobs = Jobs(store, clock=clock)
        for priority in (0, 5, 0, 5, -1):
            jobs.submit(["true"], "/", check=False, priority=priority)
        assert [j.id for j in store.claimable_jobs(10)] == [2, 4, 1, 3, 5]
        assert [j.id for j in store.claimable_jobs(2)] == [2, 4]
        assert jobs.claim("w1", lease_seconds=10).id == 2  # type: ignore[union-attr]
        assert jobs.claim("w2", lease_seconds=100).id == 4  # type: ignore[union-attr]
        jobs.cancel(5)
        assert [j.id for j in store.jobs()] == [5, 4, 3, 2, 1]
        assert [j.id for j in store.jobs(limit=2)] == [5, 4]
        assert [j.id for j in store.jobs(["queued"])] == [3, 1]
        assert [j.id for j in store.jobs(["running", "cancelled"])] == [5, 4, 2]
        assert store.jobs([]) == []
        assert store.job_counts() == {"queued": 2, "running": 2, "cancelled": 1}
        assert store.max_job_id() == 5
        assert store.job(99) is None
        assert store.expired_leases(clock.now) == []
        assert [j.id for j in store.expired_leases(clock.now + timedelta(seconds=11))] == [2]
        assert sorted(j.id for j in store.expired_leases(clock.now + timedelta(hours=1))) == [2, 4]

    def test_claimable_jobs_leave_out_blocked_and_backing_off(self, store: EventStore) -> None:
        clock = Clock()
        jobs = Jobs(store, clock=clock)
        jobs.submit(["false"], "/", check=False, retries=1, retry_delay=60.0)
        jobs.submit(["true"], "/", check=False, after=[1])
        jobs.submit(["true"], "/", check=False)
        assert [j.id for j in store.claimable_jobs(10)] == [1, 3]  # 2 waits on 1
        claimed = jobs.claim("w", 30)
        assert claimed is not None and claimed.id == 1
        jobs.finish(1, "w", 1, exit_code=1)  # failed: retried after a 60 s backoff
        assert store.job(1).status == "queued"  # type: ignore[union-attr]
        assert [j.id for j in store.claimable_jobs(10)] == [1, 3]  # no time: no backoff
        assert [j.id for j in store.claimable_jobs(10, clock.now)] == [3]
        later = clock.now + timedelta(seconds=61)
        assert [j.id for j in store.claimable_jobs(10, later)] == [1, 3]
        assert [j.id for j in store.claimable_jobs(1, later)] == [1]

    def test_queue_state(self, store: EventStore) -> None:
        queue = Queue(store)
        assert store.queue_state() == QueueView()
        assert queue.pause("maintenance")
        state = store.queue_state()
        assert state.paused and state.reason == "maintenance" and state.version == 1
        Jobs(store).submit(["true"], "/", check=False)
        assert Jobs(store).claim("w", 30) is None  # paused: nothing handed out
        assert queue.resume()
        assert not store.queue_state().paused
        assert store.rebuild() == store.head()
        assert not store.queue_state().paused and store.queue_state().version == 3

    def test_run_and_worker_queries(self, store: EventStore) -> None:
        jobs = Jobs(store)
        for tags in (["a"], ["b"], ["a", "b"]):
            job = jobs.submit(["true"], "/", check=False, tags=tags)
            claimed = jobs.claim("w", 60)
            assert claimed is not None and claimed.id == job.id
            jobs.started(job.id, "w", 1, pid=1, run_dir=f"/r/{job.id}", hostname="h")
        jobs.finish(2, "w", 1, exit_code=1)
        assert [r.id for r in store.runs()] == ["job-3", "job-2", "job-1"]
        assert [r.id for r in store.runs(limit=1)] == ["job-3"]
        assert [r.id for r in store.runs(tag="a")] == ["job-3", "job-1"]
        assert [r.id for r in store.runs(status="failed")] == ["job-2"]
        assert [r.id for r in store.runs(status="running", tag="b")] == ["job-3"]
        assert store.runs(tag="zzz") == []
        assert [r.id for r in store.runs_by_prefix("job-")] == ["job-1", "job-2", "job-3"]
        assert [r.id for r in store.runs_by_prefix("job-", limit=2)] == ["job-1", "job-2"]
        assert [r.id for r in store.runs_by_prefix("job-2")] == ["job-2"]
        assert store.runs_by_prefix("x") == []
        assert store.run("nope") is None
        workers = Workers(store)
        for worker_id in ("b", "ä", "B", "a"):
            workers.register(worker_id, "host", gpu_ids=[0, 1])
        workers.stopped("a")
        assert [w.id for w in store.workers()] == ["B", "a", "b", "ä"]  # code point order
        assert store.worker("a").stopped  # type: ignore[union-attr]
        assert store.worker("ä").gpu_ids == [0, 1]  # type: ignore[union-attr]
        assert store.worker("zz") is None

    def test_views_and_log_move_together(self, backend: Any) -> None:
        """A reader never sees an event without its view, nor a view without its event."""
        writer, reader = backend.open(), backend.open()
        done = threading.Event()
        problems: list[str] = []

        def write() -> None:
            jobs = Jobs(writer)
            try:
                for _ in range(150):  # only submits: job id == position
                    jobs.submit(["true"], "/", check=False)
            finally:
                done.set()

        thread = threading.Thread(target=write)
        thread.start()
        while not done.is_set():
            head = reader.head()
            if reader.max_job_id() < head:
                problems.append(f"event {head} visible before its view")
            newest = reader.max_job_id()
            if reader.head() < newest:
                problems.append(f"view of job {newest} visible before its event")
        thread.join()
        assert problems == []
        assert reader.max_job_id() == reader.head() == 150

    # -- concurrency in one process -----------------------------------------
    def test_threads_appending_get_dense_unique_positions(self, backend: Any) -> None:
        handles = [backend.open() for _ in range(4)]
        results = run_threads(
            [lambda s=s: [s.append([seen(str(i))]) for i in range(25)] for s in handles]
        )
        positions = sorted(p for r in results for p in r)
        assert positions == list(range(1, 101))
        assert [r.position for r in handles[0].read()] == list(range(1, 101))

    def test_a_tailing_reader_never_skips_a_slow_commit(self, backend: Any) -> None:
        """Writers that dawdle inside their transaction still become visible in order."""
        handles = [backend.open() for _ in range(4)]
        reader = backend.open()
        done = threading.Event()

        def slow(reader_view: ViewReader, delay: float) -> Sequence[Pending]:
            time.sleep(delay)  # between taking the write lock and committing
            return [seen("slow")]

        def write(store: EventStore, i: int) -> None:
            for n in range(15):
                store.transact(lambda r, d=((i * 7 + n) % 4) / 1000: slow(r, d))

        def tail() -> list[tuple[int, int]]:
            cursor, gaps = 0, []
            while not done.is_set() or reader.head() > cursor:
                for rec in reader.read(after=cursor):
                    if rec.position != cursor + 1:
                        gaps.append((cursor, rec.position))
                    cursor = rec.position
            return gaps

        tailer = threading.Thread(target=lambda: gaps.extend(tail()))
        gaps: list[tuple[int, int]] = []
        tailer.start()
        try:
            run_threads([lambda s=s, i=i: write(s, i) for i, s in enumerate(handles)])
        finally:
            done.set()
            tailer.join(60)
        assert gaps == []
        assert reader.head() == 60

    def test_concurrent_conditional_appends_lose_nothing(self, backend: Any) -> None:
        def writer(store: EventStore) -> int:
            conflicts = 0
            wins = 0
            while wins < 10:
                head = store.head()
                try:
                    store.append([seen("x")], expect=head)
                    wins += 1
                except ConflictError as exc:
                    assert exc.actual != exc.expected
                    conflicts += 1
            return conflicts

        handles = [backend.open() for _ in range(4)]
        run_threads([lambda s=s: writer(s) for s in handles])
        assert [r.position for r in handles[0].read()] == list(range(1, 41))

    def test_concurrent_claims_hand_each_job_out_once(self, backend: Any) -> None:
        setup = backend.open()
        for _ in range(40):
            Jobs(setup).submit(["true"], "/", check=False)

        def drain(store: EventStore, worker: str) -> list[int]:
            jobs = Jobs(store)
            got: list[int] = []
            while (job := jobs.claim(worker, 600)) is not None:
                got.append(job.id)
            return got

        handles = [backend.open() for _ in range(4)]
        results = run_threads([lambda s=s, i=i: drain(s, f"w{i}") for i, s in enumerate(handles)])
        claimed = sorted(j for r in results for j in r)
        assert claimed == list(range(1, 41))
        claims = setup.read(types=["job.claimed"])
        assert sorted(r.event.job_id for r in claims) == list(range(1, 41))  # type: ignore[attr-defined]
        assert setup.job_counts() == {"running": 40}

    # -- waiting -------------------------------------------------------------
    def test_waiter_is_woken_by_another_threads_append(self, backend: Any) -> None:
        waiter, writer = backend.open(), backend.open()
        writer.append([seen("a")])
        woke: list[bool] = []
        thread = threading.Thread(target=lambda: woke.append(waiter.wait(1, WAIT_LONG)))
        thread.start()
        writer.append([seen("b")])
        thread.join(WAIT_LONG + 10)
        assert woke == [True]

    def test_wait_returns_at_once_when_the_log_is_ahead(self, store: EventStore) -> None:
        store.append([seen("a"), seen("b")])
        assert store.wait(0, WAIT_LONG) is True
        assert store.wait(1, WAIT_LONG) is True

    def test_wait_times_out_when_nothing_is_appended(self, store: EventStore) -> None:
        store.append([seen("a")])
        assert store.wait(1, 0.2) is False
        assert store.wait(5, 0.0) is False
