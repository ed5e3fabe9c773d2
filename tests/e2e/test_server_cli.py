"""The real CLI against a real server: ``whirr server`` itself (token handling, --no-auth
rules) and the ``--server`` variants of submit/status/logs/runs/show/retry/cancel."""

from __future__ import annotations

import json
import signal
import stat
import subprocess
from pathlib import Path

import httpx
import pytest
from server_process import WHIRR, ServerProcess, free_port, run_cli, start_remote_worker


def test_first_start_creates_a_private_token_and_prints_it_once(tmp_path: Path) -> None:
    data = tmp_path / "data"
    first = ServerProcess(tmp_path, token="")  # "" = no --token: use or create the stored one
    first.stop()
    token_file = data / "token"
    token = token_file.read_text().strip()
    assert stat.S_IMODE(token_file.stat().st_mode) == 0o600
    assert first.output().count(token) == 1
    again = ServerProcess(tmp_path, token="")
    try:
        assert again.output().count(token) == 1  # not printed a second time
        resp = httpx.get(f"{again.url}/api/v1/status", headers={"Authorization": f"Bearer {token}"})
        assert resp.status_code == 200
        assert httpx.get(f"{again.url}/api/v1/status").status_code == 401
    finally:
        again.stop()


def test_no_auth_is_refused_off_loopback(tmp_path: Path) -> None:
    result = subprocess.run(
        [
            *WHIRR,
            "server",
            "--no-auth",
            "--host",
            "0.0.0.0",
            "-p",
            str(free_port()),
            "-d",
            str(tmp_path),
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2
    assert "refusing --no-auth" in result.stderr
    assert not (tmp_path / "token").exists()


def test_no_auth_on_loopback_serves_without_a_token(tmp_path: Path) -> None:
    server = ServerProcess(tmp_path, token=None)
    try:
        assert httpx.get(f"{server.url}/api/v1/status").status_code == 200
    finally:
        server.stop()


@pytest.fixture
def sqlite_server(tmp_path: Path):  # type: ignore[no-untyped-def]
    server = ServerProcess(tmp_path / "srv")
    yield server
    server.stop()


def test_remote_cli_commands(sqlite_server: ServerProcess, tmp_path: Path) -> None:
    server = sqlite_server
    work = tmp_path / "work"
    work.mkdir()
    ok = run_cli(
        "submit",
        "-n",
        "greet",
        "-t",
        "a,b",
        "--",
        "sh",
        "-c",
        "echo hello from $WHIRR_RUN_ID",
        server=server,
        cwd=work,
    )
    assert ok.returncode == 0 and ok.stdout.strip() == "Submitted job #1", ok.stderr
    bad = run_cli("submit", "--", "false", server=server, cwd=work)
    assert bad.stdout.strip() == "Submitted job #2"
    status = run_cli("status", server=server, cwd=work)
    assert "greet" in status.stdout and "queued" in status.stdout
    worker = start_remote_worker(server, "--exit-when-empty", "-q")
    assert worker.wait(timeout=120) == 0
    logs = run_cli("logs", "1", "-f", server=server, cwd=work)
    assert logs.stdout == "hello from job-1\n" and "completed" in logs.stderr
    listed = json.loads(run_cli("status", "--all", "--json", server=server, cwd=work).stdout)
    assert {j["id"]: j["status"] for j in listed["jobs"]} == {1: "completed", 2: "failed"}
    one = json.loads(run_cli("status", "1", "--json", server=server, cwd=work).stdout)
    assert (one["name"], one["tags"], one["workdir"]) == ("greet", ["a", "b"], str(work))
    runs = run_cli("runs", server=server, cwd=work)
    assert "job-1" in runs.stdout and "job-2" in runs.stdout
    failed = json.loads(
        run_cli("runs", "--status", "failed", "--json", server=server, cwd=work).stdout
    )
    assert [r["id"] for r in failed["runs"]] == ["job-2"]
    show = run_cli("show", "job-1", server=server, cwd=work)
    assert "completed" in show.stdout and "greet" in show.stdout, show.stderr
    retry = run_cli("retry", "2", server=server, cwd=work)
    assert retry.stdout.strip() == "Submitted job #3 (retry of #2, attempt 2)"
    cancel = run_cli("cancel", "--all-queued", server=server, cwd=work)
    assert cancel.stdout.strip() == "Cancelled 1 queued job(s): #3"
    missing = run_cli("status", "99", server=server, cwd=work)
    assert missing.returncode == 1 and missing.stderr.strip() == "Error: no job #99"


def test_remote_cli_errors_are_clear(sqlite_server: ServerProcess, tmp_path: Path) -> None:
    env_server = sqlite_server
    no_token = subprocess.run(
        [*WHIRR, "status", "--server", env_server.url],
        cwd=tmp_path,
        env={k: v for k, v in env_server.env.items() if k != "WHIRR_TOKEN"},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert no_token.returncode == 1 and "WHIRR_TOKEN" in no_token.stderr
    assert "Traceback" not in no_token.stderr
    down = subprocess.run(
        [*WHIRR, "runs", "--server", f"http://127.0.0.1:{free_port()}"],
        cwd=tmp_path,
        env=env_server.env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert down.returncode == 1 and "cannot reach" in down.stderr
    empty = run_cli("submit", "--", "", server=env_server, cwd=tmp_path)
    assert empty.returncode == 1 and empty.stderr.startswith("Error: ")


def test_a_remote_worker_drains_on_sigterm(sqlite_server: ServerProcess, tmp_path: Path) -> None:
    worker = start_remote_worker(sqlite_server, "--id", "idle-one")
    with httpx.Client(
        base_url=f"{sqlite_server.url}/api/v1", headers=sqlite_server.headers()
    ) as http:
        from server_process import wait_for

        wait_for(lambda: any(w["id"] == "idle-one" for w in http.get("/workers").json()["workers"]))
        worker.send_signal(signal.SIGTERM)  # idle in a long-poll: it leaves at once
        assert worker.wait(timeout=20) == 0
        states = {w["id"]: w["status"] for w in http.get("/workers").json()["workers"]}
        assert states["idle-one"] == "stopped"
