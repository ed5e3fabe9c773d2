"""Retention on PostgreSQL (issue 19 item 3): the same pass as SQLite's
(``retention_pass``), segments in the data dir, a segment's rows deleted in one
transaction that records it; every domain event stays live at its position, the log as
written (live + segments) is the original, and views, a rebuild from the checkpoint, a
full replay and a replay with no checkpoint agree. A replay that needs a segment it
cannot find refuses instead of folding a log with holes."""

from __future__ import annotations

import tempfile
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings, target
from hypothesis import strategies as st
from store_backends import new_schema
from store_support import Clock, views
from test_retention_sqlite import HISTORY, _busy_history, _bytes, _play

from whirr.events import Recorded, tag_of
from whirr.services import Workers
from whirr.store import retention_segments as files
from whirr.store.postgres import PostgresStore
from whirr.store.postgres.retention import archive
from whirr.store.protocol import StoreError
from whirr.store.retention import LIVENESS
from whirr.store.retention_history import History

pytestmark = pytest.mark.postgres


def _open(url: str, root: str, clock: Clock) -> PostgresStore:
    store = PostgresStore(url, clock)
    store.archive_anchor = str(Path(root) / "whirr.db")
    return store


def _whole(store: PostgresStore) -> list[Recorded]:
    """The log as written: live and archived events merged."""
    found: list[Recorded] = []
    history = History(_Anchored(store))
    while batch := history.read(found[-1].position if found else 0, 7):
        found.extend(batch)
    return found


def _forget_checkpoint(store: PostgresStore) -> None:
    store._with_conn(lambda conn: conn.execute("DELETE FROM checkpoint_stamp"))


@settings(
    max_examples=15,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(first=HISTORY, then=HISTORY, days=st.sampled_from([0, 0, 1, 3]), chunk=st.integers(1, 4))
def test_retention_never_drops_nor_moves_a_domain_event_and_rebuilds_agree(
    postgres_database: str,
    first: list[tuple[Any, ...]],
    then: list[tuple[Any, ...]],
    days: int,
    chunk: int,
) -> None:
    url, remove = new_schema(postgres_database)
    try:
        with tempfile.TemporaryDirectory() as root:
            clock = Clock()
            store = _open(url, root, clock)
            try:
                _play(store, clock, [("register", "w1"), ("seen", "w1"), *first])
                original = [_bytes(r) for r in store.read()]
                one = archive(store, older_than=timedelta(days=days), now=clock.now, chunk=chunk)
                _play(store, clock, then)
                original += [_bytes(r) for r in store.read(after=original[-1][0])]
                before = views(store)
                two = archive(store, older_than=timedelta(days=days), now=clock.now, chunk=chunk)

                live = [_bytes(r) for r in store.read()]
                assert [_bytes(r) for r in _whole(store)] == original
                gone = [r for r in original if r not in set(live)]
                assert {r[2] for r in gone} <= set(LIVENESS)
                assert [r for r in original if r[2] not in LIVENESS] == [
                    r for r in live if r[2] not in LIVENESS
                ]
                assert one.archived + two.archived == len(gone)
                target(float(len(gone)))
                assert store.head() == original[-1][0]  # the head never goes
                for rec in _whole(store):
                    if tag_of(rec.event) == "job.heartbeat" and _bytes(rec) in gone:
                        job = store.job(rec.event.job_id)  # type: ignore[attr-defined]
                        assert job is not None
                        assert not (job.status == "running" and job.attempt == rec.event.attempt)  # type: ignore[attr-defined]
                assert views(store) == before
                store.rebuild()
                assert views(store) == before
                store.rebuild(full=True)
                assert views(store) == before
                _forget_checkpoint(store)
                store.rebuild()  # no checkpoint: a replay from 0 through the segments
                assert views(store) == before
                at = store.append([])
                Workers(store).seen("w1")
                assert store.head() == at + 1
            finally:
                store.close()
    finally:
        remove()


def test_a_replay_that_needs_a_missing_segment_refuses(
    postgres_database: str, tmp_path: Path
) -> None:
    url, remove = new_schema(postgres_database)
    clock = Clock()
    store = _open(url, str(tmp_path), clock)
    try:
        _busy_history(store, clock)
        before = [_bytes(r) for r in store.read()]
        done = archive(store, now=clock.now)
        assert (done.archived, done.by_type) == (7, {"job.heartbeat": 3, "worker.seen": 4})
        [segment] = files.segments(store.archive_anchor or "")
        assert segment.path.parent == tmp_path / "archive" and not segment.pending
        assert [_bytes(r) for r in _whole(store)] == before
        views_before = views(store)

        hidden = tmp_path / segment.name
        segment.path.rename(hidden)
        with pytest.raises(StoreError, match=f"archive segment {segment.name}"):
            store.rebuild(full=True)
        assert views(store) == views_before  # the rebuild's transaction rolled back
        store.archive_anchor = None  # a store that does not know the data dir
        with pytest.raises(StoreError, match="rebuild it there"):
            store.rebuild(full=True)
        store.rebuild()  # from the checkpoint: nothing archived is needed
        assert views(store) == views_before
        with pytest.raises(StoreError, match="no data dir"):
            archive(store, now=clock.now)
    finally:
        store.close()
        remove()


class _Anchored:
    """A PostgreSQL store as the history reader sees a log: its live reads and where its
    segments are."""

    def __init__(self, store: PostgresStore) -> None:
        self.store = store
        self.path = store.archive_anchor or ""

    def read(self, after: int = 0, limit: int | None = None) -> list[Any]:
        return self.store.read(after=after, limit=limit)
