"""``RunFileMirror``: local copies of a server's run files, appended to as they grow.

The server here is a real ``StoreWhirr.read_run_file`` over a run directory on disk (the
method behind ``GET /runs/{id}/raw/{file}``), counted, so each test can say how many reads
a sync needed.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import msgspec
import pytest

from whirr.events import Pending, RunStarted, run_stream
from whirr.facade.local import StoreSettings, StoreWhirr
from whirr.facade.mirror import OVERLAP, RunFileMirror, cache_root
from whirr.store.memory import MemoryStore
from whirr.wire import schemas

T0 = datetime(2024, 1, 1, tzinfo=UTC)


class Server:
    """A run directory served by ``StoreWhirr.read_run_file``, reads counted."""

    def __init__(self, root: Path, page: int = 1 << 20) -> None:
        self.runs_dir = root / "server-runs"
        self.store = MemoryStore()
        self.whirr = StoreWhirr(self.store, StoreSettings(runs_dir=self.runs_dir), "test")
        self.page = page
        self.reads: list[int] = []

    def add(self, run_id: str, data: bytes) -> Path:
        self.store.append([Pending(run_stream(run_id), RunStarted(run_id=run_id, run_dir=""))])
        path = self.runs_dir / run_id / "metrics.jsonl"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        return path

    def read(self, run_id: str, file: str, offset: int) -> schemas.RunFileChunk:
        self.reads.append(offset)
        return self.whirr.read_run_file(run_id, file, offset, self.page)


def run(run_id: str, finished: datetime | None = None) -> schemas.Run:
    return schemas.Run(
        id=run_id,
        job_id=None,
        name=None,
        config={},
        tags=[],
        status="completed" if finished else "running",
        started_at=T0,
        finished_at=finished,
        duration_seconds=None,
        summary={},
        hostname="",
        run_dir="",
    )


def lines(start: int, stop: int) -> bytes:
    return b"".join(
        msgspec.json.encode({"_idx": i, "loss": 1 / (i + 1), "pad": "x" * 40}) + b"\n"
        for i in range(start, stop)
    )


@pytest.fixture
def server(tmp_path: Path) -> Server:
    return Server(tmp_path)


def test_a_growing_file_is_appended_to_and_a_torn_line_waits(
    server: Server, tmp_path: Path
) -> None:
    source = server.add("r1", lines(0, 100) + b'{"_idx": 100, "lo')
    mirror = RunFileMirror(tmp_path / "copies", server.read)
    copy = mirror.sync_all([run("r1")], "metrics")["r1"]
    assert copy.read_bytes() == lines(0, 100)
    size = copy.stat().st_size
    # The torn line completes and more follow: one read from just before the copy's end.
    with open(source, "ab") as fh:
        fh.write(b'ss": 0.5}\n' + lines(101, 120))
    server.reads.clear()
    assert mirror.sync_all([run("r1")], "metrics") == {"r1": copy}
    assert server.reads == [size - OVERLAP]
    assert copy.read_bytes() == source.read_bytes()


def test_a_replaced_or_shortened_file_is_copied_afresh(server: Server, tmp_path: Path) -> None:
    source = server.add("r1", lines(0, 50))
    mirror = RunFileMirror(tmp_path / "copies", server.read)
    copy = mirror.sync(run("r1"), "metrics")
    assert copy is not None
    source.write_bytes(lines(1000, 1060))  # longer, but not a continuation
    mirror.sync(run("r1"), "metrics")
    assert copy.read_bytes() == source.read_bytes()
    source.write_bytes(lines(0, 3))  # shorter
    mirror.sync(run("r1"), "metrics")
    assert copy.read_bytes() == lines(0, 3)


def test_a_file_larger_than_a_page_comes_in_pages(tmp_path: Path) -> None:
    server = Server(tmp_path, page=1000)
    server.add("r1", lines(0, 200))
    copy = RunFileMirror(tmp_path / "copies", server.read).sync(run("r1"), "metrics")
    assert copy is not None and copy.read_bytes() == lines(0, 200)
    assert len(server.reads) > 5


def test_a_finished_run_is_not_asked_about_again_until_it_finishes_anew(
    server: Server, tmp_path: Path
) -> None:
    source = server.add("r1", lines(0, 10))
    mirror = RunFileMirror(tmp_path / "copies", server.read)
    done = run("r1", finished=T0)
    assert list(mirror.sync_all([done], "metrics")) == ["r1"]
    server.reads.clear()
    assert list(mirror.sync_all([done], "metrics")) == ["r1"]
    assert server.reads == []
    # Resumed and finished again later: its new rows are fetched.
    with open(source, "ab") as fh:
        fh.write(lines(10, 12))
    again = run("r1", finished=datetime(2024, 1, 2, tzinfo=UTC))
    copy = mirror.sync_all([again], "metrics")["r1"]
    assert copy.read_bytes() == source.read_bytes() and server.reads


def test_empty_missing_and_unsafe_ids(server: Server, tmp_path: Path) -> None:
    server.add("empty", b"")
    server.store.append([Pending(run_stream("nofile"), RunStarted(run_id="nofile", run_dir=""))])
    mirror = RunFileMirror(tmp_path / "copies", server.read)
    runs = [run("empty"), run("nofile"), run("../escape"), run("ünï")]
    assert mirror.sync_all(runs, "metrics") == {}
    assert not (tmp_path / "escape").exists()
    assert sorted(p.name for p in (tmp_path / "copies").iterdir()) == ["empty", "nofile"]


def test_cache_root(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("WHIRR_CACHE_DIR", str(tmp_path))
    assert cache_root("http://head:8080/api/v1") == tmp_path / "head_8080"
    monkeypatch.delenv("WHIRR_CACHE_DIR")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert cache_root("https://user@h.example") == tmp_path / "xdg" / "whirr" / "user_h.example"
