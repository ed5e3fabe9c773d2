"""SQLite checkpoints: files beside whirr.db that a rebuild starts from, trusted only when
they are whole, of this code and of this log; the rebuild streams and leaves writers be."""

from __future__ import annotations

import re
import shutil
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from store_support import job_submitted, seen, snapshot_matches_fold, views

from whirr.services import Jobs
from whirr.store import checkpoints
from whirr.store.sql import load_queries
from whirr.store.sqlite import SQLiteStore
from whirr.store.sqlite.checkpoint import Scratch


@pytest.fixture
def warnings_told() -> Iterator[list[str]]:
    """The checkpoint warnings told meanwhile."""
    told: list[str] = []
    previous = checkpoints.listen(told.append)
    yield told
    checkpoints.listen(previous)


def project(root: Path, jobs: int = 4) -> SQLiteStore:
    """A store with some history: ``jobs`` submits, a claim, a cancel, a worker."""
    root.mkdir(parents=True, exist_ok=True)
    store = SQLiteStore(str(root / "whirr.db"))
    service = Jobs(store)
    for _ in range(jobs):
        service.submit(["true"], "/", check=False)
    service.claim("w", 60)
    service.cancel(2)
    store.append([seen("w2")])
    return store


def saved(store: SQLiteStore) -> list[Path]:
    return sorted((Path(store.path).parent / "checkpoints").glob("views-*.db"))


def test_rebuild_starts_from_the_checkpoint_and_leaves_one_at_the_head(tmp_path: Path) -> None:
    store = project(tmp_path)
    at = store.checkpoint()
    assert [p.name for p in saved(store)] == [f"views-{at:012d}.db"]
    store.append([seen("w3"), seen("w4")])
    live = views(store)
    assert store.rebuild() == 2
    assert views(store) == live
    assert saved(store)[-1].name == f"views-{store.head():012d}.db"
    assert store.rebuild() == 0
    assert store.rebuild(full=True) == store.head()
    assert views(store) == live
    assert len(saved(store)) == 2  # the newest and the one before it
    # Views hold every job's command and environment: the owner's only, as whirr.db.
    assert {p.stat().st_mode & 0o777 for p in saved(store)} == {0o600}
    assert (tmp_path / "checkpoints").stat().st_mode & 0o777 == 0o700


@pytest.mark.parametrize(
    ("damage", "why"),
    [
        (lambda p: p.write_bytes(b"not a database at all " * 500), "cannot be read"),
        (lambda p: p.write_bytes(p.read_bytes()[: p.stat().st_size // 2]), "corrupt|cannot"),
        (lambda p: p.write_bytes(b""), "no stamp|cannot be read"),
    ],
    ids=["garbage", "truncated", "empty"],
)
def test_a_damaged_checkpoint_is_ignored_with_a_warning(
    tmp_path: Path, warnings_told: list[str], damage: Any, why: str
) -> None:
    store = project(tmp_path)
    store.checkpoint()
    store.append([seen("w3")])
    live = views(store)
    damage(saved(store)[0])
    assert store.rebuild() == store.head()  # a full replay instead
    assert views(store) == live
    assert len(warnings_told) == 1
    assert re.search(
        f"ignored the checkpoint at position {store.head() - 1} .*({why})", warnings_told[0]
    )


def test_a_bit_flip_inside_a_checkpoint_is_caught(tmp_path: Path, warnings_told: list[str]) -> None:
    store = project(tmp_path, jobs=200)
    store.checkpoint()
    path = saved(store)[0]
    data = bytearray(path.read_bytes())
    middle = len(data) // 2  # inside some page of the views (not the header)
    data[middle : middle + 64] = bytes(64)
    path.write_bytes(bytes(data))
    live = views(store)
    assert store.rebuild() == store.head()
    assert views(store) == live
    assert warnings_told and "ignored the checkpoint" in warnings_told[0]


def test_a_checkpoint_of_another_log_is_ignored(tmp_path: Path, warnings_told: list[str]) -> None:
    one = project(tmp_path / "one")
    other = project(tmp_path / "other")  # the same history, at other times
    one.checkpoint()
    (tmp_path / "other" / "checkpoints").mkdir()
    shutil.copy(saved(one)[0], tmp_path / "other" / "checkpoints")
    live = views(other)
    assert other.rebuild() == other.head()
    assert views(other) == live
    assert "it belongs to another event log" in warnings_told[0]


def test_a_checkpoint_ahead_of_the_log_is_ignored(tmp_path: Path, warnings_told: list[str]) -> None:
    """A project restored from an older copy of whirr.db, its checkpoints left newer."""
    store = project(tmp_path)
    store.close()
    copy_database(tmp_path, "whirr.db", "older.db")
    store = SQLiteStore(str(tmp_path / "whirr.db"))
    store.append([seen("w3")])
    store.checkpoint()
    store.close()
    copy_database(tmp_path, "older.db", "whirr.db")
    store = SQLiteStore(str(tmp_path / "whirr.db"))
    live = views(store)
    assert store.rebuild() == store.head() == 7
    assert views(store) == live
    assert "it is ahead of the log (position 8, head 7)" in warnings_told[0]


def copy_database(root: Path, source: str, target: str) -> None:
    """A closed database copied whole: the file and its WAL."""
    for suffix in ("", "-wal"):
        (root / f"{target}{suffix}").unlink(missing_ok=True)
        if (root / f"{source}{suffix}").exists():
            shutil.copy(root / f"{source}{suffix}", root / f"{target}{suffix}")
    (root / f"{target}-shm").unlink(missing_ok=True)


def test_a_checkpoint_of_other_code_is_ignored(
    tmp_path: Path, warnings_told: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Another whirr's fold (an upgrade, a new event type) may give other views."""
    store = project(tmp_path)
    with monkeypatch.context() as patched:
        patched.setattr(checkpoints, "fingerprint", lambda: "another whirr")
        store.checkpoint()
    live = views(store)
    assert store.rebuild() == store.head()
    assert views(store) == live
    assert "another version of whirr took it" in warnings_told[0]


def test_the_newest_valid_checkpoint_is_used(tmp_path: Path, warnings_told: list[str]) -> None:
    store = project(tmp_path)
    first = store.checkpoint()
    store.append([seen("w3")])
    store.checkpoint()
    saved(store)[-1].write_bytes(b"junk" * 1000)
    assert store.rebuild() == store.head() - first
    assert len(warnings_told) == 1
    assert snapshot_matches_fold(store)


def test_a_checkpoint_is_taken_every_n_events(tmp_path: Path) -> None:
    store = SQLiteStore(str(tmp_path / "whirr.db"))
    store.checkpoint_every = 5
    for i in range(12):
        store.append([seen(f"w{i}")])
    positions = [int(p.stem.removeprefix("views-")) for p in saved(store)]
    assert positions == [5, 10]
    assert store.rebuild() == store.head() - 10


def test_rebuild_reads_the_log_in_batches(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Never the whole log at once: each read is bounded by the batch size (and the
    views cached between batches by ``Scratch.CACHE``, written back when it fills)."""
    store = project(tmp_path, jobs=20)
    monkeypatch.setattr(checkpoints, "BATCH", 7)
    monkeypatch.setattr(Scratch, "CACHE", 5)
    limits: list[int | None] = []
    read = store.read

    def spy(after: int = 0, limit: int | None = None, **rest: Any) -> Any:
        limits.append(limit)
        return read(after=after, limit=limit, **rest)

    monkeypatch.setattr(store, "read", spy)
    live = views(store)
    assert store.rebuild(full=True) == store.head()
    assert views(store) == live
    assert len(limits) >= store.head() // 7
    assert all(limit is not None and limit <= 7 for limit in limits)


def test_writers_go_on_while_a_rebuild_replays(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The write lock is not held for the replay: appends from another connection are
    committed meanwhile, and every one of them is in the rebuilt views."""
    store = project(tmp_path, jobs=400)
    monkeypatch.setattr(checkpoints, "BATCH", 50)
    writer = SQLiteStore(store.path)
    writer.checkpoint_every = 0
    appended = [0]
    stop = threading.Event()

    def write() -> None:
        while not stop.is_set() and appended[0] < 10_000:
            writer.append([job_submitted(10_000 + appended[0])])
            appended[0] += 1

    thread = threading.Thread(target=write)
    thread.start()
    try:
        deadline = time.monotonic() + 30
        while appended[0] == 0 and time.monotonic() < deadline:
            time.sleep(0.01)
        before = appended[0]
        store.rebuild(full=True)
        during = appended[0] - before
    finally:
        stop.set()
        thread.join(30)
        writer.close()
    assert not thread.is_alive()
    assert during >= 2, "appends waited for the whole rebuild"
    assert snapshot_matches_fold(store)
    assert store.job(10_000 + appended[0] - 1) is not None


def test_the_copy_in_names_every_view_table(tmp_path: Path) -> None:
    """drop_projections and restore_projections must cover every table but the log."""
    store = SQLiteStore(str(tmp_path / "whirr.db"))
    tables = {
        row[0]
        for row in store._query("SELECT name FROM sqlite_master WHERE type = 'table'")
        if row[0] != "events"
    }
    queries = load_queries("whirr.store.sqlite", "queries.sql")
    assert set(re.findall(r"DELETE FROM (\w+);", queries["drop_projections"])) == tables
    assert (
        set(
            re.findall(
                r"INSERT INTO main\.(\w+) SELECT \* FROM ck\.\1;", queries["restore_projections"]
            )
        )
        == tables
    )
