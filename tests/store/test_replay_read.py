"""Reading the SQLite log as a replay does (column by column, the events decoded in one
call): every event keeps its own position, time and stream, whatever the stored bytes."""

from __future__ import annotations

import gc
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from whirr.events import Pending, Recorded, Unreadable, WorkerSeen, encode, worker_stream
from whirr.store import checkpoints, guard
from whirr.store.sqlite import SQLiteStore
from whirr.store.sqlite.store import to_us

T0 = datetime(2030, 1, 1, tzinfo=UTC)
INSERT = "INSERT INTO events (stream, type, recorded_us, data) VALUES (?, ?, ?, ?)"


def _seen(worker: str) -> bytes:
    return encode(WorkerSeen(worker_id=worker))


def test_joined_stored_events_read_as_one_unreadable_event(tmp_path: Path) -> None:
    """Stored data holding two events (``{...},{...}``) is one undecodable event at its
    own position: the events after it keep theirs (the batch decode read it as two and
    shifted every later event onto its neighbour's position, or failed the read)."""
    store = SQLiteStore(str(tmp_path / "whirr.db"))
    told: list[list[int]] = []
    guard.listen(lambda found: told.append([r.position for r in found]))
    try:
        rows = [
            (worker_stream("a"), "worker.seen", to_us(T0), _seen("a")),
            (worker_stream("b"), "worker.seen", to_us(T0), _seen("b") + b"," + _seen("x")),
            (worker_stream("c"), "worker.seen", to_us(T0) + 1, _seen("c").decode()),  # text
            (worker_stream("d"), "worker.seen", to_us(T0) - 7, _seen("d")),
        ]
        with store._conn() as conn:
            conn.executemany(INSERT, rows)
        read = store.read()
        filtered = store.read(types=["worker.seen"])
    finally:
        guard.listen(guard._Warner())
        store.close()
    assert [r.position for r in read] == [1, 2, 3, 4]
    assert read[0] == Recorded(1, T0, worker_stream("a"), WorkerSeen(worker_id="a"))
    assert isinstance(read[1].event, Unreadable) and read[1].stream == worker_stream("b")
    micro = timedelta(microseconds=1)
    assert read[2] == Recorded(3, T0 + micro, worker_stream("c"), WorkerSeen(worker_id="c"))
    assert read[3] == Recorded(4, T0 - 7 * micro, worker_stream("d"), WorkerSeen(worker_id="d"))
    # Filtered by type, the undecodable one is left out and the rest keep their places.
    assert [r.position for r in filtered] == [1, 3, 4]
    assert told == [[2]]  # the undecodable one told about once, by the unfiltered read


def test_a_replay_spaces_collections_out_and_restores_the_threshold(tmp_path: Path) -> None:
    """While a replay folds, the collector's first threshold is raised (nested holders
    share it); the previous one is back afterwards, after a failure too, and after a
    rebuild of a real project."""
    before = gc.get_threshold()
    with checkpoints.fewer_collections():
        assert gc.get_threshold()[0] == max(before[0], checkpoints.GC_THRESHOLD)
        with checkpoints.fewer_collections():
            assert gc.get_threshold()[0] == max(before[0], checkpoints.GC_THRESHOLD)
        assert gc.get_threshold()[0] == max(before[0], checkpoints.GC_THRESHOLD)
    assert gc.get_threshold() == before
    with pytest.raises(RuntimeError), checkpoints.fewer_collections():
        raise RuntimeError
    assert gc.get_threshold() == before
    store = SQLiteStore(str(tmp_path / "whirr.db"))
    try:
        store.append([Pending(worker_stream("a"), WorkerSeen(worker_id="a"))])
        assert store.rebuild(full=True) == 1
    finally:
        store.close()
    assert gc.get_threshold() == before
