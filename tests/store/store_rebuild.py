"""The rebuild part of the store contract: replaying the log, from position 0 or from a
checkpoint, gives the views kept incrementally, for hand-picked and for random
(hypothesis) histories."""

from __future__ import annotations

from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from store_ops import OPERATIONS, apply_op
from store_support import Clock, snapshot_matches_fold, views

from whirr.services import Jobs
from whirr.store import EventStore


class RebuildContract:
    """``rebuild()`` == incremental, on every backend."""

    # -- rebuild -------------------------------------------------------------
    def test_rebuild_replays_into_the_same_views(self, store: EventStore) -> None:
        jobs = Jobs(store)
        for _ in range(3):
            jobs.submit(["true"], "/", check=False)
        jobs.claim("w", 60)
        jobs.cancel(2)
        before = (store.jobs(), store.runs(), store.workers(), store.job_counts())
        assert store.rebuild() == store.head() == 5
        assert (store.jobs(), store.runs(), store.workers(), store.job_counts()) == before
        assert snapshot_matches_fold(store)

    def test_rebuild_of_an_empty_log(self, store: EventStore) -> None:
        assert store.rebuild() == 0
        assert store.jobs() == []

    # Every backend's class runs this one method, which hypothesis flags as "differing
    # executors"; that matters only for replaying from its example database, which is off.
    @settings(
        max_examples=20,
        deadline=None,
        database=None,
        suppress_health_check=[
            HealthCheck.function_scoped_fixture,
            HealthCheck.too_slow,
            HealthCheck.differing_executors,
        ],
    )
    @given(ops=st.lists(OPERATIONS, min_size=1, max_size=30), cut=st.integers(0, 30))
    def test_rebuild_equals_incremental(
        self, backend: Any, ops: list[tuple[Any, ...]], cut: int
    ) -> None:
        """Random use through the services, with a checkpoint taken after the first
        ``cut`` operations: the views kept incrementally == the checkpoint plus a replay
        of the tail == a full replay of the log (and a rebuild from the checkpoint that
        rebuild left == them too)."""
        with backend.fresh() as store:
            clock = Clock()
            jobs = Jobs(store, clock=clock)
            for op in ops[:cut]:
                apply_op(store, jobs, clock, op)
            at = store.checkpoint()
            assert at == store.head()
            for op in ops[cut:]:
                apply_op(store, jobs, clock, op)
            incremental = views(store)
            assert snapshot_matches_fold(store)
            assert store.rebuild() == incremental["head"] - at  # checkpoint + tail
            assert views(store) == incremental
            assert store.rebuild(full=True) == incremental["head"]  # from position 0
            assert views(store) == incremental
            assert store.rebuild() == 0  # the checkpoint the full replay left
            assert views(store) == incremental
