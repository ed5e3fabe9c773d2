"""A server's data dir knows itself as a project does (issue 18): ``whirr server -d DIR``
over a whirr.db that was deleted, emptied or replaced by another server's is one loud
``Error:`` line and exit 1, never a silent new history that numbers jobs from 1 again
into the old runs' directories; ``--force-new-history`` starts over on purpose.

Real servers and the real CLI in subprocesses, real SQLite files."""

from __future__ import annotations

import subprocess
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import psycopg
import pytest
from cli_runner import WHIRR
from postgres_env import postgres_url_or_skip
from psycopg import sql
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


@contextmanager
def scratch_database(label: str) -> Iterator[str]:
    """A PostgreSQL database of the test's own, dropped after it."""
    url = postgres_url_or_skip()
    name = f"whirr_ident_{label}_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(url, autocommit=True) as admin:
        admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    try:
        yield urlunsplit(urlsplit(url)._replace(path=f"/{name}"))
    finally:
        with psycopg.connect(url, autocommit=True) as admin:
            admin.execute(sql.SQL("DROP DATABASE {} WITH (FORCE)").format(sql.Identifier(name)))


@pytest.mark.postgres
def test_on_postgresql_a_replaced_database_is_loud_and_can_be_adopted(tmp_path: Path) -> None:
    with scratch_database("a") as first, scratch_database("b") as second:
        server = ServerProcess(tmp_path / "s", database_url=first)
        try:
            with WhirrClient(server.url, token=server.token) as client:
                client.submit(["true"], "/tmp")
        finally:
            server.stop()
        data_dir = server.data_dir
        assert (data_dir / "project-id").exists()  # names the database's first event

        # Pointed at another (empty) database: not silently a new history.
        result = start(data_dir, "--database-url", second)
        assert_loud(result, "holds no history")
        assert "pg_restore" in result.stderr

        # On purpose: the other database's history becomes the server's.
        again = ServerProcess(tmp_path / "s", database_url=second, args=("--force-new-history",))
        try:
            assert "Took the database's history" in again.output()
            with WhirrClient(again.url, token=again.token) as client:
                assert client.submit(["true"], "/tmp").job_id == 1
        finally:
            again.stop()
        assert list(data_dir.glob("lost-*/project-id"))  # the old id kept aside
        # And now the first database is the foreign one.
        assert_loud(start(data_dir, "--database-url", first), "belongs to another")
