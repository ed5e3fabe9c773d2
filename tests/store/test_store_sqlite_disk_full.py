"""A full or read-only disk under the SQLite store: one ``StoreWriteError`` naming the
cause, never apsw's exception (nor the "cannot rollback" one that used to hide it), and
nothing half-written in the log; once there is room again, writes go on."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from disk_faults import run_scenario, small_disk

from whirr.store import StoreWriteError
from whirr.store.sqlite import SQLiteStore


def test_a_full_disk_is_one_store_write_error_and_nothing_half_written(tmp_path: Path) -> None:
    with small_disk(tmp_path) as (where, kind):
        out = run_scenario(
            where,
            kind,
            """
            from whirr.events import Pending, WorkerSeen
            from whirr.store import StoreWriteError
            from whirr.store.sqlite import SQLiteStore

            store = SQLiteStore(str(where / "whirr.db"))
            seen = lambda i: Pending(f"worker-w{i}", WorkerSeen(worker_id=f"w{i}"))
            store.append([seen(i) for i in range(3)])
            fill()
            big = [seen(i) for i in range(3, 3000)]  # more pages than any WAL slack
            try:
                store.append(big)
            except StoreWriteError as exc:
                print("refused:", exc)
            else:
                raise SystemExit("the append went through on a full disk")
            assert store.head() == 3, store.head()
            free()
            store.append([seen(9999)])
            assert store.head() == 4, store.head()
            assert [r.position for r in store.read()] == [1, 2, 3, 4]
            store.close()
            """,
        )
    assert "refused:" in out
    assert ("the disk is full" in out) or ("I/O error" in out), out
    assert "nothing of this write was recorded" in out
    assert "rollback" not in out.lower()


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes through file modes")
def test_a_read_only_database_is_one_store_write_error(tmp_path: Path) -> None:
    path = tmp_path / "whirr.db"
    SQLiteStore(str(path)).close()
    for name in ("whirr.db", "whirr.db-wal", "whirr.db-shm"):
        if (tmp_path / name).exists():
            (tmp_path / name).chmod(0o400)
    _append_fails_read_only(path)


def test_a_read_only_mount_is_one_store_write_error(tmp_path: Path) -> None:
    if os.geteuid() != 0:
        pytest.skip("remounting read-only needs root (the file-mode test covers non-root)")
    with small_disk(tmp_path) as (where, kind):
        if kind != "tmpfs":
            pytest.skip("forced onto the rlimit fault")
        store = SQLiteStore(str(where / "whirr.db"))
        store.close()
        os.system(f"mount -o remount,ro {where}")
        try:
            _append_fails_read_only(where / "whirr.db")
        finally:
            os.system(f"mount -o remount,rw {where}")


def _append_fails_read_only(path: Path) -> None:
    from whirr.events import Pending, WorkerSeen

    try:
        store = SQLiteStore(str(path))
    except StoreWriteError as exc:  # opening may already need to write (the WAL index)
        assert "read-only" in str(exc) or "I/O error" in str(exc), exc
        return
    try:
        with pytest.raises(StoreWriteError, match=r"read-only|I/O error"):
            store.append([Pending("worker-w", WorkerSeen(worker_id="w"))])
    finally:
        store.close()
