"""A server's data dir knows itself as a project does (issue 18): ``whirr server -d DIR``
over a whirr.db that was deleted, emptied or replaced by another server's is one loud
``Error:`` line and exit 1, never a silent new history that numbers jobs from 1 again
into the old runs' directories; ``--force-new-history`` starts over on purpose.

Real servers and the real CLI in subprocesses, real SQLite files."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from cli_runner import WHIRR
from server_process import ServerProcess, free_port

from whirr.client import WhirrClient


def served(root: Path, jobs: int) -> Path:
    """A data dir whose server queued ``jobs`` jobs (and made their run dirs), stopped."""
    server = ServerProcess(root)
    try:
        with WhirrClient(server.url, token=server.token) as client:
            for _ in range(jobs):
                job_id = client.submit(["true"], "/tmp").job_id
                (server.data_dir / "runs" / f"job-{job_id}").mkdir(parents=True)
    finally:
        server.stop()
    return server.data_dir


def start(data_dir: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """``whirr server -d data_dir``, which must exit by itself within 30 s (a server that
    came up over a lost history would serve on until killed: a failure here)."""
    cmd = [*WHIRR, "server", "-p", str(free_port()), "-d", str(data_dir), "--no-auth", *args]
    try:
        return subprocess.run(cmd, capture_output=True, text=True, timeout=30)
    except subprocess.TimeoutExpired as exc:
        raise AssertionError(f"whirr server came up over a lost history: {exc.stdout!r}") from None


def assert_loud(result: subprocess.CompletedProcess[str], what: str) -> None:
    assert result.returncode == 1, (result.stdout, result.stderr)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: "), result.stderr
    assert what in lines[0] and "--force-new-history" in lines[0], lines[0]


def test_the_data_dir_gets_an_id_file_naming_its_first_event(tmp_path: Path) -> None:
    data_dir = served(tmp_path / "s", jobs=1)
    assert len((data_dir / "project-id").read_text().split()) == 1  # the log's first event


@pytest.mark.parametrize("damage", ["deleted", "empty", "replaced"])
def test_a_lost_database_stops_the_server_loudly(tmp_path: Path, damage: str) -> None:
    data_dir = served(tmp_path / "s", jobs=2)
    for path in data_dir.glob("whirr.db*"):
        path.unlink()
    if damage == "empty":
        (data_dir / "whirr.db").write_bytes(b"")
    elif damage == "replaced":
        other = served(tmp_path / "other", jobs=1)
        for path in other.glob("whirr.db*"):
            (data_dir / path.name).write_bytes(path.read_bytes())
    result = start(data_dir)
    what = {"deleted": "is missing", "empty": "is empty", "replaced": "belongs to another"}
    assert_loud(result, what[damage])
    assert (damage == "deleted") != (data_dir / "whirr.db").exists()  # nothing made anew


def test_force_new_history_numbers_jobs_above_the_old_runs(tmp_path: Path) -> None:
    data_dir = served(tmp_path / "s", jobs=3)
    for path in data_dir.glob("whirr.db*"):
        path.unlink()
    assert_loud(start(data_dir), "is missing")
    server = ServerProcess(tmp_path / "s", args=("--force-new-history",))
    try:
        assert "Started a new, empty history" in server.output()
        with WhirrClient(server.url, token=server.token) as client:
            assert client.submit(["true"], "/tmp").job_id == 4  # not job-1's directory
    finally:
        server.stop()
    assert list(data_dir.glob("lost-*/project-id"))  # the old id kept aside


def test_force_new_history_is_refused_with_postgresql(tmp_path: Path) -> None:
    result = start(tmp_path, "--force-new-history", "--database-url", "postgresql://x/y")
    assert result.returncode == 2 and "SQLite history" in result.stderr
