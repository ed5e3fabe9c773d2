"""The run-directory size warning through a server (issue 19 item 3): a real remote worker
measures its job's directory past a tiny ``--warn-run-dir-size`` and records it
(``POST /jobs/{id}/size_warning``); ``whirr show --server`` and ``whirr status ID`` show
it; only the worker running the attempt may record one."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from server_process import (
    ServerProcess,
    run_cli,
    start_remote_worker,
    stop_process,
    wait_for,
    worker_output,
)

from whirr.client import WhirrClient
from whirr.services.errors import LeaseLost, NotFound
from whirr.wire import schemas

_JOB = """
import os, pathlib, time
run = pathlib.Path(os.environ["WHIRR_RUN_DIR"])
(run / "big.bin").write_bytes(b"x" * 200 * 1024)
deadline = time.monotonic() + 60
while not (run / "done").exists() and time.monotonic() < deadline:
    time.sleep(0.05)
"""


def _warned(client: WhirrClient, run_id: str) -> schemas.Run | None:
    """The run once it has a size warning (None before: not started, or not past it)."""
    try:
        run = client.get_run(run_id)
    except NotFound:
        return None
    return run if run.size_warning is not None else None


def test_a_remote_worker_records_the_warning_on_the_server(
    server: ServerProcess, tmp_path: Path
) -> None:
    """On a server over SQLite and over PostgreSQL."""
    worker = None
    try:
        with WhirrClient(server.url, token=server.token) as client:
            job_id = client.submit([sys.executable, "-c", _JOB], str(tmp_path)).job_id
            worker = start_remote_worker(
                server,
                "--exit-when-empty",
                "--heartbeat-interval",
                "0.2",
                "--warn-run-dir-size",
                "64K",
            )
            run = wait_for(lambda: _warned(client, f"job-{job_id}"), timeout=30)
            assert run.size_warning is not None
            assert run.size_warning.size >= 200 * 1024 and run.size_warning.limit == 64 * 1024
            job = client.get_job(job_id)
            assert job.worker_id is not None
            with pytest.raises(LeaseLost):  # not the worker running it
                client.run_size_warning(job_id, "someone-else", job.attempt, 1, 0)
            shown = run_cli("show", run.id, server=server, cwd=tmp_path)
            assert shown.returncode == 0, shown.stderr
            assert "run directory past 64.0 KiB: " in shown.stdout
            status = run_cli("status", str(job_id), server=server, cwd=tmp_path)
            assert "Warning:   run directory past 64.0 KiB" in status.stdout
            (Path(run.run_dir) / "done").touch()
            assert worker.wait(timeout=30) == 0
            assert "past 64.0 KiB (--warn-run-dir-size)" in worker_output(server)
            events = client.get_run(run.id)
            assert events.size_warning == run.size_warning  # recorded once
    finally:
        if worker is not None:
            stop_process(worker)
