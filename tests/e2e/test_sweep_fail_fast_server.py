"""Fail fast on a server (SQLite and PostgreSQL): a real remote worker runs a sweep whose
jobs all fail the same way; the server records the pause with the end that makes N, the
worker says so, ``sweep status`` and ``status`` show it, and ``sweep resume`` releases."""

from __future__ import annotations

import json
import signal
import time
from pathlib import Path
from typing import Any

from server_process import ServerProcess, run_cli, start_remote_worker, worker_output

TRAIN = """\
import argparse
parser = argparse.ArgumentParser()
parser.add_argument("--batch-size", type=int)
parser.parse_args()
"""

SWEEP = """\
name: bs
program: python train.py
fail_fast: 3
parameters:
  batch_size: [8, 16, 32, 64, 128, 256]
"""


def cli(server: ServerProcess, cwd: Path, *args: str) -> str:
    result = run_cli(*args, server=server, cwd=cwd)
    assert result.returncode == 0, result.stderr
    return result.stdout


def sweep_listed(server: ServerProcess, cwd: Path) -> Any:
    return json.loads(cli(server, cwd, "sweeps", "--json"))["sweeps"][0]


def test_a_server_pauses_a_failing_sweep_and_resumes_it(
    server: ServerProcess, tmp_path: Path
) -> None:
    work = tmp_path / "work"
    work.mkdir()
    (work / "train.py").write_text(TRAIN)
    (work / "sweep.yaml").write_text(SWEEP)
    # The file says 3; the command line wins.
    cli(server, work, "sweep", "sweep.yaml", "--fail-fast", "2")

    worker = start_remote_worker(server)
    try:
        deadline = time.monotonic() + 60
        while sweep_listed(server, work)["state"] != "paused":
            assert time.monotonic() < deadline, worker_output(server)
            assert worker.poll() is None, worker_output(server)
            time.sleep(0.3)
        while "Sweep bs paused (fail-fast)" not in worker_output(server):
            assert time.monotonic() < deadline, worker_output(server)
            time.sleep(0.2)
    finally:
        worker.send_signal(signal.SIGINT)
        worker.wait(timeout=60)

    listed = sweep_listed(server, work)
    failed = listed["progress"]["failed"]
    assert 2 <= failed <= 3 and listed["progress"]["queued"] == 6 - failed, listed
    report = json.loads(cli(server, work, "sweep", "status", "bs", "--json"))
    assert report["sweep"]["paused_after"] == [1, 2]
    reason = "its first 2 jobs to end (#1, #2) all failed with exit code 2 and logged no metric"
    assert report["sweep"]["paused"] == reason
    assert f"Sweep bs paused (fail-fast): {reason}" in worker_output(server)
    assert f"Paused (fail-fast): {reason}" in cli(server, work, "sweep", "status", "bs")
    status = cli(server, work, "status")
    assert "queued (held: sweep bs paused: #1, #2 failed with exit 2, no metric" in status

    # Fix the script, resume: a worker that leaves when the queue is empty runs the rest.
    (work / "train.py").write_text(TRAIN.replace("--batch-size", "--batch_size"))
    resumed = cli(server, work, "sweep", "resume", "bs")
    assert resumed.strip() == f"Sweep bs: released {6 - failed} held job(s)"
    drain = start_remote_worker(server, "--exit-when-empty", "-q")
    assert drain.wait(timeout=120) == 0, worker_output(server)
    listed = sweep_listed(server, work)
    assert (listed["state"], listed["progress"]["done"]) == ("finished", 6 - failed)
