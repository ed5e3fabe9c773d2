"""Reads bounded by what they show (issue 19 item 4), through a real server on SQLite and
PostgreSQL and in a project: ``whirr status`` prints at most ``--limit`` jobs (running ones
first) and says how many more there are; workers not heard from for 7 days are left out of
``whirr workers``, ``GET /workers`` and the status counts, and ``--all`` still lists them."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from cli_runner import run_cli as run_local_cli
from server_process import ServerProcess, run_cli

from whirr.clock import utc_now
from whirr.project import Project
from whirr.services import Jobs
from whirr.services.workers import Workers
from whirr.store import EventStore
from whirr.store.postgres import PostgresStore
from whirr.store.sqlite import SQLiteStore


@pytest.fixture
def open_server_store(server: ServerProcess) -> Iterator[Callable[..., EventStore]]:
    """Opens the server's own log from this process, with a clock of the test's choosing."""
    opened: list[EventStore] = []

    def open_store(clock: Callable[[], datetime] = utc_now) -> EventStore:
        args = [str(arg) for arg in server.proc.args]
        url = args[args.index("--database-url") + 1] if "--database-url" in args else None
        store: EventStore
        if url:
            store = PostgresStore(url, clock)
        else:
            store = SQLiteStore(str(server.data_dir / "whirr.db"), clock)
        opened.append(store)
        return store

    yield open_store
    for store in opened:
        store.close()


def queue_seven_jobs_two_running(store: EventStore) -> None:
    jobs = Jobs(store)
    for i in range(7):
        jobs.submit(["echo", str(i)], "/", check=False)
    assert jobs.claim("here", 600) is not None
    assert jobs.claim("here", 600) is not None


def test_status_prints_at_most_the_limit_running_first(
    server: ServerProcess, open_server_store: Callable[..., EventStore], tmp_path: Path
) -> None:
    queue_seven_jobs_two_running(open_server_store())
    out = run_cli("status", "-n", "3", server=server, cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    rows = [line.split() for line in out.stdout.splitlines()[1:4]]
    assert [(r[0], r[2]) for r in rows] == [("1", "running"), ("2", "running"), ("7", "queued")]
    assert "(4 more not shown; -n/--limit shows more)" in out.stdout
    assert out.stdout.rstrip().endswith("5 queued, 2 running")
    everything = run_cli("status", server=server, cwd=tmp_path)
    assert "more not shown" not in everything.stdout
    assert len(everything.stdout.splitlines()) == 1 + 7 + 2  # header, jobs, blank, counts


def test_workers_long_gone_are_forgotten(
    server: ServerProcess, open_server_store: Callable[..., EventStore], tmp_path: Path
) -> None:
    eight_days_ago = utc_now() - timedelta(days=8)
    old = Workers(open_server_store(lambda: eight_days_ago))
    old.register("gone-idle", "h", pid=1, gpu_ids=[], slots=1)
    old.register("gone-stopped", "h", pid=2, gpu_ids=[], slots=1)
    old.stopped("gone-stopped")
    Workers(open_server_store()).register("here", "h", pid=3, gpu_ids=[], slots=1)
    with server.http() as http:
        listed = http.get("/workers").json()["workers"]
        assert [w["id"] for w in listed] == ["here"]
        every = http.get("/workers", params={"forgotten": "true"}).json()["workers"]
        assert [w["id"] for w in every] == ["gone-idle", "gone-stopped", "here"]
        status = http.get("/status").json()
        assert (status["workers_total"], status["workers_online"]) == (1, 1)
        assert http.get("/workers", params={"forgotten": "maybe"}).status_code == 422
    default = run_cli("workers", server=server, cwd=tmp_path)
    assert "here" in default.stdout and "gone" not in default.stdout, default.stdout
    shown_all = run_cli("workers", "--all", server=server, cwd=tmp_path)
    assert all(w in shown_all.stdout for w in ("gone-idle", "gone-stopped", "here"))


def test_a_project_status_and_workers_are_bounded_too(project: Project) -> None:
    store = project.open_store()
    old = SQLiteStore(str(project.db_path), lambda: utc_now() - timedelta(days=9))
    try:
        queue_seven_jobs_two_running(store)
        Workers(old).register("gone", "h", pid=1, gpu_ids=[], slots=1)
    finally:
        store.close()
        old.close()
    out = run_local_cli("status", "-n", "2", cwd=project.root)
    assert [line.split()[0] for line in out.stdout.splitlines()[1:3]] == ["1", "2"]
    assert "(5 more not shown; -n/--limit shows more)" in out.stdout
    workers = run_local_cli("workers", "--all", cwd=project.root)
    assert "gone" in workers.stdout
    assert "gone" not in run_local_cli("workers", cwd=project.root).stdout
