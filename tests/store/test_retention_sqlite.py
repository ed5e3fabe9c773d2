"""Retention on SQLite (issue 19 item 3): liveness events move from the live log into
archive segments below a checkpoint; domain events never move, positions never change,
and every rebuild (from the checkpoint, from an older one, from none) gives the views
the never-archived log gave."""

from __future__ import annotations

import shutil
import tempfile
from datetime import timedelta
from pathlib import Path
from typing import Any

import msgspec
import pytest
from hypothesis import HealthCheck, given, settings, target
from hypothesis import strategies as st
from store_ops import OPERATIONS, WORKERS, apply_op
from store_support import Clock, views

from whirr.events import Recorded, encode, tag_of
from whirr.services import Jobs, Workers
from whirr.store import retention_segments as files
from whirr.store.retention import LIVENESS
from whirr.store.retention_history import History
from whirr.store.retention_sqlite import Busy, _exclusive, archive
from whirr.store.sqlite import SQLiteStore

# Liveness-heavy use: most of what a real log holds is heartbeats and worker.seen.
_LIVENESS_OPS = st.one_of(
    st.tuples(st.just("heartbeat"), st.integers(0, 30)),
    st.tuples(st.just("seen"), st.sampled_from(WORKERS)),
)
HISTORY = st.lists(st.one_of(OPERATIONS, _LIVENESS_OPS, _LIVENESS_OPS), min_size=1, max_size=40)


def _bytes(rec: Recorded) -> tuple[int, str, str, bytes, Any]:
    return (rec.position, rec.stream, tag_of(rec.event), encode(rec.event), rec.recorded_at)


def _whole(store: SQLiteStore) -> list[Recorded]:
    """The log as written: live and archived events merged."""
    found: list[Recorded] = []
    history = History(store)
    while batch := history.read(found[-1].position if found else 0, 7):
        found.extend(batch)
    return found


def _play(store: SQLiteStore, clock: Clock, ops: list[tuple[Any, ...]]) -> None:
    jobs = Jobs(store, clock=clock)
    for op in ops:
        apply_op(store, jobs, clock, op)
        clock.advance(3600)  # an hour apart: the older part of the history may go


@settings(
    max_examples=25,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(first=HISTORY, then=HISTORY, days=st.sampled_from([0, 0, 1, 3]), chunk=st.integers(1, 4))
def test_retention_never_drops_nor_moves_a_domain_event_and_rebuilds_agree(
    first: list[tuple[Any, ...]], then: list[tuple[Any, ...]], days: int, chunk: int
) -> None:
    """Random histories, two retention passes (the second after more use, so segments
    interleave): every domain event stays live at its position with its bytes; the log
    as written (live + segments) is the original, event for event; only liveness events
    moved, heartbeats only of ended attempts; views, a rebuild from the checkpoint, a full
    replay and a rebuild with every checkpoint deleted all agree."""
    with tempfile.TemporaryDirectory() as root:
        clock = Clock()
        store = SQLiteStore(str(Path(root) / "whirr.db"), clock)
        try:
            # Never an empty log, and always some liveness to archive.
            _play(store, clock, [("register", "w1"), ("seen", "w1"), *first])
            original = [_bytes(r) for r in store.read()]
            one = archive(store, older_than=timedelta(days=days), now=clock.now, chunk=chunk)
            _play(store, clock, then)
            original += [_bytes(r) for r in store.read(after=original[-1][0] if original else 0)]
            before = views(store)
            two = archive(store, older_than=timedelta(days=days), now=clock.now, chunk=chunk)

            live = [_bytes(r) for r in store.read()]
            assert [_bytes(r) for r in _whole(store)] == original
            assert set(live) <= set(original)
            gone = [r for r in original if r not in set(live)]
            assert {r[2] for r in gone} <= set(LIVENESS)
            assert [r for r in original if r[2] not in LIVENESS] == [
                r for r in live if r[2] not in LIVENESS
            ]
            assert one.archived + two.archived == len(gone)
            target(float(len(gone)))
            assert store.head() == (original[-1][0] if original else 0)  # the head never goes
            for rec in _whole(store):  # archived heartbeats are of ended attempts only
                if tag_of(rec.event) == "job.heartbeat" and _bytes(rec) in gone:
                    job = store.job(rec.event.job_id)  # type: ignore[attr-defined]
                    assert job is not None
                    assert not (job.status == "running" and job.attempt == rec.event.attempt)  # type: ignore[attr-defined]
            assert views(store) == before
            store.rebuild()
            assert views(store) == before
            store.rebuild(full=True)
            assert views(store) == before
            shutil.rmtree(Path(root) / "checkpoints")
            store.rebuild()  # no checkpoint: a replay from 0 through the segments
            assert views(store) == before
            # The log goes on at the next position, never one given out before.
            at = store.append([])
            Workers(store).seen(WORKERS[0])
            assert store.head() == at + 1
        finally:
            store.close()


def _store(tmp_path: Path) -> tuple[SQLiteStore, Clock]:
    clock = Clock()
    store = SQLiteStore(str(tmp_path / "whirr.db"), clock)
    return store, clock


def _busy_history(store: SQLiteStore, clock: Clock) -> None:
    """Job 1 ran and ended with heartbeats, job 2 still runs with heartbeats, an idle
    worker said it was alive; all 30 days ago. Then one fresh worker.seen."""
    jobs = Jobs(store, clock=clock)
    workers = Workers(store)
    workers.register("w1", "host", slots=2)
    for _ in range(2):
        jobs.submit(["true"], "/", check=False)
    for job_id in (1, 2):
        claimed = jobs.claim("w1", 60)
        assert claimed is not None and claimed.id == job_id
        for _ in range(3):
            jobs.heartbeat(job_id, "w1", 1, 60)
    jobs.finish(1, "w1", 1, 0)
    for _ in range(4):
        workers.seen("w1")
    clock.advance(30 * 86400)
    workers.seen("w1")


def test_only_old_liveness_of_ended_attempts_goes(tmp_path: Path) -> None:
    store, clock = _store(tmp_path)
    _busy_history(store, clock)
    before = [_bytes(r) for r in store.read()]
    dry = archive(store, now=clock.now, dry_run=True)
    assert (dry.archived, dry.by_type) == (7, {"job.heartbeat": 3, "worker.seen": 4})
    assert [_bytes(r) for r in store.read()] == before and not files.segments(store.path)
    done = archive(store, now=clock.now)
    assert (done.archived, done.by_type, done.dry_run) == (7, dry.by_type, False)
    kinds = [(tag_of(r.event), getattr(r.event, "job_id", None)) for r in store.read()]
    # job 2's heartbeats stay (its attempt runs); the fresh worker.seen stays (young).
    assert kinds.count(("job.heartbeat", 2)) == 3 and ("job.heartbeat", 1) not in kinds
    assert kinds.count(("worker.seen", None)) == 1
    [segment] = files.segments(store.path)
    assert segment.path.stat().st_mode & 0o777 == 0o400
    assert (segment.path.parent.stat().st_mode & 0o777) == 0o700
    assert [_bytes(r) for r in _whole(store)] == before
    again = archive(store, now=clock.now)
    assert again.archived == 0 and len(files.segments(store.path)) == 1


def test_a_pass_killed_after_writing_its_segment_is_finished_by_the_next(tmp_path: Path) -> None:
    store, clock = _store(tmp_path)
    _busy_history(store, clock)
    before = [_bytes(r) for r in store.read()]
    rows = store._query(
        "SELECT position, recorded_us, stream, type, data FROM events "
        "WHERE type = 'worker.seen' ORDER BY position LIMIT 2"
    )
    lines = [files.Line(p, us, s, t, msgspec.Raw(bytes(d))) for p, us, s, t, d in rows]
    pending = files.write(store.path, lines)  # ... and the process died here
    assert pending.pending
    # Both still live and in the pending segment: read once, not twice.
    assert [_bytes(r) for r in _whole(store)] == before
    done = archive(store, now=clock.now)
    assert done.finished == 1
    assert all(not s.pending for s in files.segments(store.path))
    assert [_bytes(r) for r in _whole(store)] == before
    assert done.archived == 5  # the other 5 of the 7 that may go


def test_one_pass_at_a_time(tmp_path: Path) -> None:
    store, clock = _store(tmp_path)
    _busy_history(store, clock)
    with _exclusive(store), pytest.raises(Busy, match="another retention pass"):
        archive(store, now=clock.now)
