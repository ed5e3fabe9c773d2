"""The Rust worker's run-directory size warning (``whirr-worker --warn-run-dir-size``,
issue 19 item 3), as the Python worker's (tests/e2e/test_run_size_warning_server.py): a
real server and the real binary; a job writes past a tiny warning size, the worker logs
the same line as the Python worker and records it once (``POST /jobs/{id}/size_warning``),
and ``whirr show`` on the head node shows it. (``off`` and the option's parsing: the
crate's unit tests; crossing again after falling below: ``run_size.rs``'s.)"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from server_process import ServerProcess, run_cli, wait_for
from worker_processes import WorkerProcs, worker_command

from whirr.client import WhirrClient
from whirr.services.errors import NotFound
from whirr.wire import schemas
from whirr.worker.run_size import human_bytes

pytestmark = pytest.mark.skipif(sys.platform != "linux", reason="the worker is Linux-only")

_JOB = """
import os, pathlib, time
run = pathlib.Path(os.environ["WHIRR_RUN_DIR"])
(run / "big.bin").write_bytes(b"x" * 200 * 1024)
deadline = time.monotonic() + 60
while not (run / "done").exists() and time.monotonic() < deadline:
    time.sleep(0.05)
"""


@pytest.fixture
def server(tmp_path: Path) -> Iterator[ServerProcess]:
    proc = ServerProcess(tmp_path)
    yield proc
    proc.stop()


@pytest.fixture
def procs() -> Iterator[WorkerProcs]:
    started = WorkerProcs()
    yield started
    started.kill_all()


def _warned(client: WhirrClient, run_id: str) -> schemas.Run | None:
    """The run once it has a size warning (None before: not started, or not past it)."""
    try:
        run = client.get_run(run_id)
    except NotFound:
        return None
    return run if run.size_warning is not None else None


def test_the_rust_worker_warns_once_and_records_it_on_the_server(
    server: ServerProcess, procs: WorkerProcs, tmp_path: Path
) -> None:
    log = server.logs_dir / "rust-worker.log"
    with WhirrClient(server.url, token=server.token) as client:
        job_id = client.submit([sys.executable, "-c", _JOB], str(tmp_path)).job_id
        command = worker_command("rust", server.url, server.data_dir, lease=30)
        env = {**server.env, "WHIRR_WARN_RUN_DIR_SIZE": "64K"}  # the env as --warn-run-dir-size
        worker = procs.spawn(command, env, log)
        run = wait_for(lambda: _warned(client, f"job-{job_id}"), timeout=30)
        assert run.size_warning is not None
        assert run.size_warning.size >= 200 * 1024
        assert run.size_warning.limit == 64 * 1024
        shown = run_cli("show", run.id, server=server, cwd=tmp_path)
        assert shown.returncode == 0, shown.stderr
        assert "run directory past 64.0 KiB: " in shown.stdout
        (Path(run.run_dir) / "done").touch()
        wait_for(lambda: client.get_job(job_id).status == "completed", timeout=30)
        assert client.get_run(run.id).size_warning == run.size_warning  # recorded once
    worker.terminate()
    assert worker.wait(timeout=20) == 0
    said = log.read_text()
    line = (
        f"Job #{job_id}: its run directory {run.run_dir} holds "
        f"{human_bytes(run.size_warning.size)}, past 64.0 KiB (--warn-run-dir-size)."
    )
    assert said.count("(--warn-run-dir-size)") == 1, said
    assert line in said, said
