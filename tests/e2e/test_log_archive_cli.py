"""``whirr log archive`` / ``whirr log segments`` / ``whirr events --archived`` through the
real CLI on a real project: a month-old history of liveness goes to a segment, domain
events stay, and every event can still be read back and replayed."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

from cli_runner import run_cli
from server_process import ServerProcess, wait_for

from whirr.clock import utc_now
from whirr.services import Jobs, Workers
from whirr.store.sqlite import SQLiteStore


def _month_old_history(root: Path) -> None:
    """A worker that ran two jobs with heartbeats and idled, 30 days ago; one fresh event."""
    run_cli("init", cwd=root, check=True)
    past = utc_now() - timedelta(days=30)
    store = SQLiteStore(str(root / ".whirr" / "whirr.db"), clock=lambda: past)
    try:
        jobs, workers = Jobs(store, clock=lambda: past), Workers(store)
        workers.register("w1", "host")
        for _ in range(2):
            jobs.submit(["true"], str(root), check=False)
            job = jobs.claim("w1", 60)
            assert job is not None
            for _ in range(5):
                jobs.heartbeat(job.id, "w1", job.attempt, 60)
            jobs.finish(job.id, "w1", job.attempt, 0)
        for _ in range(10):
            workers.seen("w1")
    finally:
        store.close()
    fresh = SQLiteStore(str(root / ".whirr" / "whirr.db"))
    try:
        Workers(fresh).seen("w1")
    finally:
        fresh.close()


def test_archive_dry_run_then_archive_then_read_back(tmp_path: Path) -> None:
    _month_old_history(tmp_path)
    before = run_cli("events", "--json", "-n", "1000", cwd=tmp_path, check=True).stdout
    dry = run_cli("log", "archive", "--dry-run", "--json", cwd=tmp_path, check=True)
    assert json.loads(dry.stdout)["archived"] == 20
    assert json.loads(dry.stdout)["by_type"] == {"job.heartbeat": 10, "worker.seen": 10}
    assert run_cli("events", "--json", "-n", "1000", cwd=tmp_path).stdout == before

    done = run_cli("log", "archive", cwd=tmp_path, check=True)
    assert done.stdout.startswith("Archived 20 event(s) (10 job.heartbeat, 10 worker.seen)")
    listed = run_cli("log", "segments", "--json", cwd=tmp_path, check=True).stdout
    [segment] = [json.loads(line) for line in listed.splitlines()]
    assert Path(segment["path"]).parent == tmp_path / ".whirr" / "archive"
    assert not segment["pending"]

    live = run_cli("events", "-n", "1000", cwd=tmp_path, check=True)
    assert "job.heartbeat" not in live.stdout and "job.finished" in live.stdout
    assert "are archived in 1 segment(s)" in live.stderr
    assert "whirr events --archived" in live.stderr
    written = run_cli("events", "--archived", "--json", "-n", "1000", cwd=tmp_path, check=True)
    assert written.stdout == before  # the log as written, event for event
    heartbeats = run_cli(
        "events", "--archived", "--type", "job.heartbeat", "--json", cwd=tmp_path, check=True
    )
    assert len(heartbeats.stdout.splitlines()) == 10

    rebuilt = run_cli("rebuild", "--full", cwd=tmp_path, check=True)
    assert "Rebuilt views from" in rebuilt.stdout
    again = run_cli("log", "archive", "--json", cwd=tmp_path, check=True)
    assert json.loads(again.stdout)["archived"] == 0


def test_archive_errors_are_one_line(tmp_path: Path) -> None:
    outside = run_cli("log", "archive", cwd=tmp_path)
    assert outside.returncode != 0 and "Traceback" not in outside.stderr
    _month_old_history(tmp_path)
    bad = run_cli("log", "archive", "--older-than", "soon", cwd=tmp_path)
    assert bad.returncode == 2 and "--older-than" in bad.stderr
    remote = run_cli("events", "--archived", "--server", "http://127.0.0.1:9", cwd=tmp_path)
    assert remote.returncode == 2 and "--archived reads a project's archive" in remote.stderr


def test_a_server_with_retention_archives_on_its_schedule(tmp_path: Path) -> None:
    first = ServerProcess(tmp_path)  # creates the data dir's whirr.db and project-id
    first.stop()
    db = first.data_dir / "whirr.db"
    past = utc_now() - timedelta(days=30)
    store = SQLiteStore(str(db), clock=lambda: past)
    try:
        for _ in range(6):
            Workers(store).seen("w1")
    finally:
        store.close()
    fresh = SQLiteStore(str(db))
    try:
        Workers(fresh).seen("w1")
    finally:
        fresh.close()
    server = ServerProcess(tmp_path, args=("--retention", "7d", "--retention-every", "0.5"))
    try:
        assert "archiving liveness events older than 7d" in wait_for(
            lambda: server.output() if "archiving" in server.output() else None
        )
        segment = wait_for(lambda: next((first.data_dir / "archive").glob("log-*.jsonl.gz"), None))
        assert segment.stat().st_mode & 0o777 == 0o400
        wait_for(lambda: "retention: archived 6 event(s)" in server.output() or None)
    finally:
        server.stop()
    listed = run_cli("log", "segments", "--json", "-d", str(first.data_dir), cwd=tmp_path)
    assert listed.returncode == 0, listed.stderr
    assert json.loads(listed.stdout)["path"] == str(segment)
