"""Two archive segments holding the same event (a restored backup's segment whose rows
were still live in its copy of the log, archived again by the next pass) are read once."""

from __future__ import annotations

from pathlib import Path

from store_support import Clock
from test_retention_sqlite import _busy_history, _bytes, _whole

from whirr.store import retention_segments as files
from whirr.store.retention_sqlite import archive
from whirr.store.sqlite import SQLiteStore


def test_an_event_in_two_segments_is_read_once(tmp_path: Path) -> None:
    clock = Clock()
    store = SQLiteStore(str(tmp_path / "whirr.db"), clock)
    try:
        _busy_history(store, clock)
        before = [_bytes(r) for r in store.read()]
        archive(store, now=clock.now)
        [segment] = files.segments(store.path)
        lines = list(files.read(segment))[:3]
        files.seal(files.write(store.path, lines))  # the first three again, in another file
        assert len(files.segments(store.path)) == 2
        assert [_bytes(r) for r in _whole(store)] == before
    finally:
        store.close()
