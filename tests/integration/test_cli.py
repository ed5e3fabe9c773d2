"""The real CLI: bad input gets one line and a non-zero exit, never a traceback."""

from __future__ import annotations

import json
import os
from pathlib import Path

import apsw
from cli_runner import run_cli

from whirr.project import Project


def assert_clean_error(result, code: int = 1, text: str = "") -> None:
    assert result.returncode == code, (result.stdout, result.stderr)
    assert "Traceback" not in result.stderr
    if code == 1:
        assert result.stderr.startswith("Error: "), result.stderr
        assert len(result.stderr.strip().splitlines()) == 1
    assert text in result.stderr


def test_no_arguments_prints_help(tmp_path: Path) -> None:
    result = run_cli(cwd=tmp_path)
    assert result.returncode == 0 and "Commands:" in result.stdout


def test_init_twice_is_harmless(tmp_path: Path) -> None:
    first = run_cli("init", cwd=tmp_path, check=True)
    assert "Initialized" in first.stdout
    assert {p.name for p in (tmp_path / ".whirr").iterdir()} >= {"config.yaml", "whirr.db", "runs"}
    second = run_cli("init", cwd=tmp_path, check=True)
    assert "already initialized" in second.stdout


def test_outside_a_project(tmp_path: Path) -> None:
    assert_clean_error(
        run_cli("status", cwd=tmp_path, env={"HOME": str(tmp_path)}), text="whirr init"
    )


def test_project_found_from_a_subdirectory(project: Project) -> None:
    sub = project.root / "a" / "b"
    sub.mkdir(parents=True)
    run_cli("submit", "--", "true", cwd=sub, check=True)
    result = run_cli("status", "--json", cwd=project.root, check=True)
    [job] = json.loads(result.stdout)["jobs"]
    assert job["workdir"] == str(sub)


def test_home_whirr_is_never_a_project(tmp_path: Path) -> None:
    (tmp_path / ".whirr").mkdir()
    work = tmp_path / "work"
    work.mkdir()
    assert_clean_error(run_cli("status", cwd=work, env={"HOME": str(tmp_path)}), text="whirr init")


def test_submit_errors(project: Project) -> None:
    assert_clean_error(run_cli("submit", cwd=project.root), code=2, text="Missing argument")
    assert_clean_error(
        run_cli("submit", "--", "no-such-program-123", cwd=project.root), text="command not found"
    )
    assert_clean_error(run_cli("submit", "--", "", cwd=project.root), text="empty command")
    # Nothing was half-written.
    result = run_cli("status", "--all", "--json", cwd=project.root, check=True)
    assert json.loads(result.stdout) == {"jobs": []}


def test_submit_then_status_and_passthrough_args(project: Project) -> None:
    result = run_cli(
        "submit", "-n", "exp", "-t", "a,b", "echo", "--lr", "0.1", cwd=project.root, check=True
    )
    assert result.stdout.strip() == "Submitted job #1"
    job = json.loads(run_cli("status", "1", "--json", cwd=project.root, check=True).stdout)
    assert job["command_argv"] == ["echo", "--lr", "0.1"]
    assert (job["name"], job["tags"], job["status"]) == ("exp", ["a", "b"], "queued")
    table = run_cli("status", cwd=project.root, check=True).stdout
    assert "exp" in table and "queued" in table


def test_unknown_job_and_finished_job(project: Project) -> None:
    assert_clean_error(run_cli("status", "7", cwd=project.root), text="no job #7")
    assert_clean_error(run_cli("cancel", "7", cwd=project.root), text="no job #7")
    assert_clean_error(run_cli("logs", "7", cwd=project.root), text="no job #7")
    run_cli("submit", "true", cwd=project.root, check=True)
    assert run_cli("cancel", "1", cwd=project.root, check=True).stdout.startswith("Cancelled")
    assert_clean_error(run_cli("cancel", "1", cwd=project.root), text="already ended")
    assert_clean_error(run_cli("retry", "7", cwd=project.root), text="no job #7")
    retried = run_cli("retry", "1", cwd=project.root, check=True)
    assert "retry of #1" in retried.stdout
    assert_clean_error(run_cli("cancel", cwd=project.root), code=2)


def test_cancel_all_queued(project: Project) -> None:
    for _ in range(3):
        run_cli("submit", "true", cwd=project.root, check=True)
    result = run_cli("cancel", "--all-queued", cwd=project.root, check=True)
    assert "Cancelled 3 queued job(s)" in result.stdout


def test_corrupt_database(project: Project) -> None:
    project.db_path.write_bytes(b"this is not a database" * 100)
    for suffix in ("-wal", "-shm"):
        Path(str(project.db_path) + suffix).unlink(missing_ok=True)
    assert_clean_error(run_cli("status", cwd=project.root), text="corrupt")


def test_newer_schema_is_refused(project: Project) -> None:
    conn = apsw.Connection(str(project.db_path))
    conn.execute("PRAGMA user_version=999")
    conn.close()
    assert_clean_error(run_cli("status", cwd=project.root), text="newer")


def test_invalid_config(project: Project) -> None:
    project.config_path.write_text("heartbeat_interval: 200\nheartbeat_timeout: 100\n")
    assert_clean_error(run_cli("worker", cwd=project.root), text="heartbeat_interval")
    project.config_path.write_text("heartbeat_interval: [\n")
    assert_clean_error(run_cli("worker", cwd=project.root), text="not valid YAML")
    project.config_path.write_text("hartbeat_interval: 3\n")
    assert_clean_error(run_cli("worker", cwd=project.root), text="hartbeat_interval")


def test_worker_drains_then_logs_events_and_rebuild(project: Project) -> None:
    run_cli("submit", "--", "sh", "-c", "echo hello; echo bye", cwd=project.root, check=True)
    run_cli("worker", "--exit-when-empty", "-q", cwd=project.root, check=True)
    assert run_cli("logs", "1", cwd=project.root, check=True).stdout == "hello\nbye\n"
    assert run_cli("logs", "1", "-n", "1", cwd=project.root, check=True).stdout == "bye\n"
    follow = run_cli("logs", "1", "-f", cwd=project.root, check=True, timeout=20)
    assert follow.stdout == "hello\nbye\n" and "completed" in follow.stderr
    events = run_cli("events", "--json", "--stream", "job-1", cwd=project.root, check=True)
    types = [json.loads(line)["event"]["type"] for line in events.stdout.splitlines()]
    assert types == ["job.submitted", "job.claimed", "job.started", "job.finished"]
    before = run_cli("status", "--all", "--json", cwd=project.root, check=True).stdout
    assert "Rebuilt views from" in run_cli("rebuild", cwd=project.root, check=True).stdout
    assert run_cli("status", "--all", "--json", cwd=project.root, check=True).stdout == before
    assert_clean_error(run_cli("events", "--type", "bogus", cwd=project.root), code=2)


def test_logs_follow_stops_when_job_ends(project: Project) -> None:
    import subprocess
    import sys

    run_cli(
        "submit", "--", "sh", "-c", "echo start; sleep 1; echo end", cwd=project.root, check=True
    )
    follower = subprocess.Popen(
        [sys.executable, "-m", "whirr.cli.main", "logs", "1", "-f"],
        cwd=project.root,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=dict(os.environ),
    )
    run_cli("worker", "--exit-when-empty", "-q", cwd=project.root, check=True)
    out, err = follower.communicate(timeout=20)
    assert out == "start\nend\n" and "job #1 completed" in err


def test_doctor(project: Project) -> None:
    result = run_cli("doctor", cwd=project.root)
    assert result.returncode == 0, result.stdout
    assert "WAL mode" in result.stdout and "schema version" in result.stdout
    checks = json.loads(run_cli("doctor", "--json", cwd=project.root).stdout)
    assert {c["name"] for c in checks} >= {"project", "database", "WAL mode", "workers"}
    project.db_path.write_bytes(b"garbage" * 1000)
    for suffix in ("-wal", "-shm"):  # the WAL outlives connections; drop it with the file
        Path(str(project.db_path) + suffix).unlink(missing_ok=True)
    bad = run_cli("doctor", cwd=project.root)
    assert bad.returncode == 1 and "Traceback" not in bad.stderr
