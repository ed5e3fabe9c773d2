"""A project's worker that is SIGKILLed leaves its job ``running`` with a lease nobody
renews. Without another worker: reading the queue shows the lease as expired (the worker
is lost), and the next command that writes requeues the job first, so ``whirr cancel``
cancels it at once instead of waiting on a worker that is gone (issue 17, item 4)."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import time
from datetime import UTC, datetime
from pathlib import Path

from tests.cli_runner import WHIRR, run_cli

DEADLINE_S = 60.0
LEASE_S = 4


def _wait(predicate, what: str):  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + DEADLINE_S
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.1)


def _job(root: Path, job_id: int) -> dict:  # type: ignore[type-arg]
    out = run_cli("status", str(job_id), "--json", cwd=root, check=True).stdout
    return json.loads(out)  # type: ignore[no-any-return]


def _expired(job: dict) -> bool:  # type: ignore[type-arg]
    lease = job["lease_expires_at"]
    return lease is not None and datetime.fromisoformat(lease) < datetime.now(UTC)


def _kill_job(pid_file: Path) -> None:
    with contextlib.suppress(FileNotFoundError, ValueError, ProcessLookupError):
        os.killpg(int(pid_file.read_text()), signal.SIGKILL)


def _lost_worker_project(tmp_path: Path) -> tuple[Path, int, Path]:
    """A project whose only worker was SIGKILLed while job #1 ran, once the lease ran out."""
    root = tmp_path / "p"
    root.mkdir()
    run_cli("init", cwd=root, check=True)
    config = root / ".whirr" / "config.yaml"
    text = config.read_text()
    text = text.replace("heartbeat_interval: 30", "heartbeat_interval: 1")
    text = text.replace("heartbeat_timeout: 120", f"heartbeat_timeout: {LEASE_S}")
    text = text.replace("kill_grace_period: 10", "kill_grace_period: 1")
    config.write_text(text)
    pid_file = tmp_path / "job.pid"
    run_cli(
        "submit", "--", "sh", "-c", f"echo $$ > {pid_file}; exec sleep 300", cwd=root, check=True
    )
    worker = subprocess.Popen(
        [*WHIRR, "worker"], cwd=root, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        _wait(lambda: _job(root, 1)["status"] == "running" and pid_file.exists(), "job #1 to run")
    finally:
        worker.kill()  # SIGKILL: the worker cannot requeue or report anything
        worker.wait()
    _wait(lambda: _expired(_job(root, 1)), "job #1's lease to run out")
    return root, 1, pid_file


def test_reading_shows_the_lost_worker_and_cancel_ends_the_job_at_once(tmp_path: Path) -> None:
    root, job_id, pid_file = _lost_worker_project(tmp_path)
    try:
        table = run_cli("status", cwd=root, check=True).stdout
        assert "worker lost" in table and "lease expired" in table
        detail = run_cli("status", str(job_id), cwd=root, check=True).stdout
        assert "lease expired" in detail
        assert _job(root, job_id)["status"] == "running"  # a read changes nothing

        answer = run_cli("cancel", str(job_id), cwd=root, check=True).stdout
        assert answer.strip() == f"Cancelled job #{job_id} (was running)"
        assert _job(root, job_id)["status"] == "cancelled"
    finally:
        _kill_job(pid_file)


def test_the_next_write_requeues_the_lost_workers_job(tmp_path: Path) -> None:
    root, job_id, pid_file = _lost_worker_project(tmp_path)
    try:
        run_cli("submit", "--", "true", cwd=root, check=True)
        job = _job(root, job_id)
        assert (job["status"], job["attempt"]) == ("queued", 2)
        events = run_cli("events", "--type", "job.requeued", "--json", cwd=root, check=True)
        assert "lease expired" in events.stdout
    finally:
        _kill_job(pid_file)
