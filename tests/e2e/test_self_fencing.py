"""End to end: a worker cut off from its server stops its job before the server hands it
out again (issue 17, self-fencing).

A real ``whirr server``, a worker of each kind (Python, Rust) reaching it through a
``PauseProxy`` on a 15 s lease with 1 s of kill grace, and a second worker reaching it
directly. The proxy is paused (a partition) while the job runs: the cut-off worker stops
its copy 12.85 s after its last renewal got through (SIGTERM, the job records its end),
the server requeues the job once the lease is over and the second worker runs attempt
2. The job records each attempt's [start, end] (``time.time()``): they must not overlap.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from fencing_env import (
    LEASE,
    StartWorker,
    history,
    intervals,
    logs,
    overlap,
    workers,
    write_job,
)
from pause_proxy import PauseProxy
from server_process import ServerProcess, wait_for

from whirr.client import WhirrClient

pytestmark = pytest.mark.skipif(sys.platform != "linux", reason="the workers are Linux-only")


@pytest.fixture(params=["python", "rust"])
def start_worker(request: pytest.FixtureRequest) -> Iterator[StartWorker]:
    yield from workers(str(request.param))


@pytest.fixture
def server(tmp_path: Path) -> Iterator[ServerProcess]:
    proc = ServerProcess(tmp_path / "srv")
    yield proc
    proc.stop()


def test_a_partitioned_worker_stops_its_job_before_the_server_requeues_it(
    server: ServerProcess, start_worker: StartWorker, tmp_path: Path
) -> None:
    workdir = tmp_path / "wd"
    command = write_job(workdir)
    proxy = PauseProxy(server.port)
    try:
        with WhirrClient(server.url, token=server.token) as client:
            job_id = client.submit(command, str(workdir)).job_id
            start_worker(server, proxy.url, "cut")
            wait_for(lambda: 1 in intervals(workdir), timeout=30)
            assert client.get_job(job_id).worker_id == "cut"
            proxy.pause()
            paused_at = intervals(workdir)[1][0]
            # Only now a second worker: it can take the job once the server requeues it.
            start_worker(server, server.url, "healthy")
            done = wait_for(
                lambda: (j := client.get_job(job_id)).status == "completed" and j,
                timeout=LEASE + 30,
            )
            proxy.resume()
            spans = intervals(workdir)
            context = f"{spans}\n{history(server, job_id)}\n{logs(server)}"
            assert (done.attempt, done.worker_id) == (2, "healthy"), context
            assert sorted(spans) == [1, 2], context
            first_end = spans[1][1]
            assert first_end is not None, f"attempt 1 never recorded its end\n{context}"
            # Stopped by its own worker, within the lease of its last renewal.
            assert first_end - paused_at < LEASE, context
            measured = overlap(spans)
            gap = spans[2][0] - first_end
            print(f"overlap between attempts: {measured * 1000:.0f} ms (gap {gap:.2f} s)")
            assert measured <= 0, context
            requeues = [h for h in history(server, job_id) if h[0] == "job.requeued"]
            assert len(requeues) == 1, context
            assert "fenced" in (server.logs_dir / "cut.log").read_text(errors="replace"), context
    finally:
        proxy.close()
