"""Reads that do not grow with history (issue 19 item 4), on every backend: the job counts
view equals counting the jobs, the tag lookup equals filtering every run, and workers not
heard from since a cutoff are left out of listings; the SQL plans use the indexes."""

from __future__ import annotations

import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from store_backends import Backend, new_schema
from store_ops import OPERATIONS, apply_op
from store_support import Clock

from whirr.events import Pending, RunFinished, RunStarted, run_stream
from whirr.projections.jobs import status_column
from whirr.services import Jobs
from whirr.services.management import Management
from whirr.services.workers import Workers
from whirr.store import EventStore
from whirr.store.memory import MemoryStore
from whirr.store.postgres import PostgresStore
from whirr.store.postgres.schema import Q as PG_QUERIES
from whirr.store.sqlite import SQLiteStore
from whirr.store.sqlite.store import _Q as SQLITE_QUERIES

MakeStore = Callable[[Callable[[], datetime]], EventStore]
TAGS = ["a", "b", "ü", "x", "y", "z", "never-used"]


def counted_in_sql(store: EventStore) -> dict[str, int] | None:
    """The counts as a COUNT(*) over the jobs table (None for the memory store)."""
    if isinstance(store, SQLiteStore):
        return dict(store._query(SQLITE_QUERIES["job_counts_counted"]))
    if isinstance(store, PostgresStore):
        rows = store._read(lambda v: v.conn.execute(PG_QUERIES["job_counts_counted"]).fetchall())
        return {str(status): int(n) for status, n in rows}
    return None


def check_reads(store: EventStore) -> None:
    """The maintained views answer as the unindexed reads they replace."""
    counts = store.job_counts()
    assert counts == dict(Counter(status_column(j) for j in store.jobs()))
    sql = counted_in_sql(store)
    assert sql is None or counts == sql
    runs = store.runs()
    for tag in TAGS:
        assert store.runs(tag=tag) == [r for r in runs if tag in r.tags], tag
        for archived in (False, True):
            expected = [r for r in runs if tag in r.tags and r.archived == archived]
            assert store.runs(tag=tag, archived=archived, limit=2) == expected[:2]


class ReadViewsContract:
    """Every backend's class provides ``backend`` and ``make_store``."""

    @settings(
        max_examples=12,
        deadline=None,
        database=None,
        suppress_health_check=[
            HealthCheck.function_scoped_fixture,
            HealthCheck.too_slow,
            HealthCheck.differing_executors,
        ],
    )
    @given(ops=st.lists(OPERATIONS, min_size=1, max_size=30), cut=st.integers(0, 30))
    def test_counts_and_tags_equal_the_unindexed_answers(
        self, backend: Backend, ops: list[tuple[Any, ...]], cut: int
    ) -> None:
        """After random use, after a checkpoint mid-history and a rebuild from it, and
        after a full replay."""
        with backend.fresh() as store:
            clock = Clock()
            jobs = Jobs(store, clock=clock)
            for op in ops[:cut]:
                apply_op(store, jobs, clock, op)
            check_reads(store)
            store.checkpoint()
            for op in ops[cut:]:
                apply_op(store, jobs, clock, op)
            check_reads(store)
            store.rebuild()
            check_reads(store)
            store.rebuild(full=True)
            check_reads(store)

    def test_counts_follow_each_status_change(self, backend: Backend) -> None:
        with backend.fresh() as store:
            jobs = Jobs(store)
            for _ in range(4):
                jobs.submit(["true"], "/", check=False)
            assert store.job_counts() == {"queued": 4}
            jobs.claim("w", 60)
            jobs.cancel(2)
            assert store.job_counts() == {"queued": 2, "running": 1, "cancelled": 1}
            store.rebuild(full=True)
            assert store.job_counts() == {"queued": 2, "running": 1, "cancelled": 1}

    def test_tags_follow_tag_untag_and_delete(self, backend: Backend) -> None:
        """A run's tag rows follow its tags as they change (random histories may not
        untag a run that has the tag; this one does)."""
        with backend.fresh() as store:
            for run_id, tags in (("r1", ["a"]), ("r2", ["a", "b"]), ("r3", [])):
                started = RunStarted(run_id=run_id, run_dir=f"/runs/{run_id}", tags=tags)
                store.append([Pending(run_stream(run_id), started)])
            manage = Management(store)
            manage.add_tags("r3", ["b", "c"])
            manage.remove_tags("r2", ["a"])
            ended = RunFinished(run_id="r1", status="completed", exit_code=0)
            store.append([Pending(run_stream("r1"), ended)])
            manage.delete("r1")
            check_reads(store)
            assert {r.id for r in store.runs(tag="b")} == {"r2", "r3"}
            assert store.runs(tag="a") == []
            store.rebuild(full=True)
            check_reads(store)
            assert {r.id for r in store.runs(tag="b")} == {"r2", "r3"}

    def test_forgotten_workers_are_left_out_after_the_cutoff(self, make_store: MakeStore) -> None:
        clock = Clock()
        store = make_store(clock)
        try:
            workers = Workers(store)
            workers.register("old", "h", pid=1, gpu_ids=[], slots=1)
            workers.stopped("old")
            clock.advance(3 * 86_400)
            workers.register("idle", "h", pid=2, gpu_ids=[], slots=1)
            clock.advance(5 * 86_400)
            workers.register("new", "h", pid=3, gpu_ids=[], slots=1)
            week_ago = clock.now - timedelta(days=7)
            assert [w.id for w in store.workers(heard_since=week_ago)] == ["idle", "new"]
            clock.advance(3 * 86_400)
            workers.seen("idle")  # heard from again: back within the week
            week_ago = clock.now - timedelta(days=7)
            assert [w.id for w in store.workers(heard_since=week_ago)] == ["idle", "new"]
            clock.advance(5 * 86_400)
            week_ago = clock.now - timedelta(days=7)
            assert [w.id for w in store.workers(heard_since=week_ago)] == ["idle"]
            assert [w.id for w in store.workers()] == ["idle", "new", "old"]  # all are kept
            store.rebuild(full=True)
            assert [w.id for w in store.workers(heard_since=week_ago)] == ["idle"]
        finally:
            store.close()


class TestMemory(ReadViewsContract):
    @pytest.fixture
    def backend(self, memory_backend: Backend) -> Backend:
        return memory_backend

    @pytest.fixture
    def make_store(self) -> MakeStore:
        return lambda clock: MemoryStore(clock)


class TestSQLite(ReadViewsContract):
    @pytest.fixture
    def backend(self, sqlite_backend: Backend) -> Backend:
        return sqlite_backend

    @pytest.fixture
    def make_store(self, tmp_path: Path) -> MakeStore:
        return lambda clock: SQLiteStore(str(tmp_path / f"{uuid.uuid4().hex}.db"), clock)


class TestPostgres(ReadViewsContract):
    @pytest.fixture
    def backend(self, postgres_backend: Backend) -> Backend:
        return postgres_backend

    @pytest.fixture
    def make_store(self, postgres_database: str) -> Iterator[MakeStore]:
        removers: list[Callable[[], None]] = []

        def make(clock: Callable[[], datetime]) -> EventStore:
            url, remove = new_schema(postgres_database)
            removers.append(remove)
            return PostgresStore(url, clock)

        yield make
        for remove in removers:
            remove()


# -- the plans: lookups through the indexes, whatever the number of rows -------------------
def test_sqlite_plans_use_the_indexes(tmp_path: Path) -> None:
    store = SQLiteStore(str(tmp_path / "whirr.db"))
    try:

        def plan(query: str, params: Any) -> str:
            rows = store._query("EXPLAIN QUERY PLAN " + SQLITE_QUERIES[query], params)
            return " | ".join(str(row[3]) for row in rows)

        tagged = plan("runs_tagged", {"tag": "t", "status": None, "archived": None, "limit": 5})
        assert tagged.startswith("SEARCH t USING PRIMARY KEY (tag=?)"), tagged
        assert "SCAN r" not in tagged, tagged
        counts = plan("job_counts", ())
        assert "job_counts" in counts and "jobs" not in counts.replace("job_counts", ""), counts
        workers = plan("workers", {"since_us": 1})
        assert "USING INDEX workers_heard (heard_us>?)" in workers, workers
    finally:
        store.close()


def test_postgres_tag_lookup_is_led_by_run_tags(postgres_database: str) -> None:
    """With 20,000 runs tagged like a sweep (one tag on all, one of 20 on each) and fresh
    statistics, a tag no run has is looked up in run_tags, not found by walking the runs
    newest first (which a GIN index on runs.tags led the planner to)."""
    url, remove = new_schema(postgres_database)
    PostgresStore(url).close()  # creates the schema's tables
    try:
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute(
                "INSERT INTO runs (id, status, started_at, version, tags, data) "
                "SELECT 'r' || g, 'completed', now(), g, ARRAY['sweep', 't' || (g % 20)], '{}' "
                "FROM generate_series(1, 20000) g"
            )
            conn.execute(
                "INSERT INTO run_tags (tag, run_id) "
                "SELECT t.tag, r.id FROM runs r, unnest(r.tags) AS t(tag)"
            )
            conn.execute("ANALYZE")
            params = {"tag": "never-used", "status": None, "archived": None, "limit": 100}
            plan = "\n".join(
                str(row[0]) for row in conn.execute("EXPLAIN " + PG_QUERIES["runs_tagged"], params)
            )
        assert "run_tags_pkey" in plan, plan
        assert "runs_newest" not in plan, plan
    finally:
        remove()
