"""The job output cap (issue 19) on a worker that ships its run files: a server on one
data dir, a Python worker with ``WHIRR_MAX_OUTPUT_SIZE=1M`` on another (no shared
filesystem). The server's output.log is the worker's capped file byte for byte, complete
when the job is reported ``completed`` (the tail and its marker are written before)."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from server_process import ServerProcess, wait_for
from shipping_env import ServerCopy, hide
from worker_processes import WorkerProcs, worker_command

from whirr.client import WhirrClient
from whirr.worker.output_cap import first_marker, last_marker

pytestmark = pytest.mark.skipif(sys.platform != "linux", reason="the worker is Linux-only")

#: 3 MiB of numbered lines, 4 KiB at a time, then the line a failed job ends with.
JOB = """
import os
data = b"".join(b"%015d\\n" % i for i in range(3 * 2**20 // 16))
for at in range(0, len(data), 4096):
    os.write(1, data[at:at + 4096])
os.write(2, b"Traceback: the job's last line\\n")
"""
LAST_LINE = b"Traceback: the job's last line\n"
OUTPUT = b"".join(b"%015d\n" % i for i in range(3 * 2**20 // 16)) + LAST_LINE


@pytest.fixture
def procs() -> Iterator[WorkerProcs]:
    p = WorkerProcs()
    yield p
    p.kill_all()


@pytest.mark.parametrize("server", ["sqlite"], indirect=True)  # the store plays no part
def test_the_servers_copy_of_a_capped_log_is_the_workers(
    server: ServerProcess, procs: WorkerProcs, tmp_path: Path
) -> None:
    data_dir = tmp_path / "worker-b"
    data_dir.mkdir()
    command = worker_command("python", server.url, data_dir, lease=30, worker_id="box-b")
    env = {**server.env, "WHIRR_SERVER_URL": server.url, "WHIRR_MAX_OUTPUT_SIZE": "1M"}
    worker = procs.spawn(command, env, server.logs_dir / "python-worker.log")
    work = tmp_path / "work"
    work.mkdir()
    (work / "job.py").write_text(JOB)
    copy = ServerCopy(server)
    try:
        with WhirrClient(server.url, token=server.token) as api:
            job_id = api.submit([sys.executable, "job.py"], str(work)).job_id

            def ended() -> str | None:
                status = api.get_job(job_id).status
                return None if status in ("queued", "running") else status

            status = wait_for(ended, timeout=120, interval=0.1)
            assert status == "completed", (server.logs_dir / "python-worker.log").read_text()
            theirs = copy.log(job_id)  # at once: shipped in full before the end was reported
            run_id = api.get_job(job_id).run_id
    finally:
        copy.close()
    head, tail = 768 * 1024, 256 * 1024
    assert theirs == (
        OUTPUT[:head]
        + first_marker(2**20)
        + last_marker(len(OUTPUT) - head - tail, tail)
        + OUTPUT[-tail:]
    )
    worker.terminate()
    assert worker.wait(timeout=30) == 0
    mine = (hide(data_dir) / "runs" / run_id / "output.log").read_bytes()
    assert mine == theirs
