"""Issue 21's messages through a real server: a remote CPU-only worker that leaves a
``--gpus 1`` job behind says which and why, and the remote CLI prints a dependency's
own status and each failed job's exit code and last lines."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
from server_process import ServerProcess, run_cli, start_remote_worker, worker_output


def test_remote_worker_and_cli_say_what_is_left_and_why(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("WHIRR_FAKE_GPUS", "0")  # the worker (started with server.env) has none
    server = ServerProcess(tmp_path / "srv")
    try:
        work = tmp_path / "work"
        work.mkdir()

        def submit(*args: str) -> int:
            done = run_cli("submit", "--json", *args, server=server, cwd=work)
            assert done.returncode == 0, done.stderr
            return int(json.loads(done.stdout)["id"])

        failing = "import sys; [print('line', i) for i in range(5)]; sys.exit(7)"
        assert submit(sys.executable, "-c", failing) == 1
        assert submit("--after", "1", "--after-any", sys.executable, "-c", "pass") == 2
        assert submit("--gpus", "1", sys.executable, "-c", "pass") == 3
        worker = start_remote_worker(server, "--exit-when-empty")
        assert worker.wait(timeout=120) == 0, worker_output(server)
        said = worker_output(server)
        assert "queue empty" not in said
        assert "1 queued job(s) need more than this worker offers (no GPUs" in said
        assert "#3 (needs 1 GPU)" in said and "drained (nothing queued it can run)." in said

        status = run_cli("status", "2", server=server, cwd=work).stdout
        assert "After:     #1 (failed): runs once each has ended" in status
        failed = run_cli("status", "-s", "failed", server=server, cwd=work).stdout
        assert failed.splitlines()[0].split()[6:8] == ["EXIT", "ERROR"]
        logs = run_cli("logs", "--failed", "-n", "1", server=server, cwd=work)
        assert logs.returncode == 0, logs.stderr
        assert logs.stdout.splitlines() == ["==> job #1: failed, exit 7 <==", "line 4"]
    finally:
        server.stop()
