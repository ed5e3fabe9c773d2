"""End to end: the server's own pauses do not count against its workers (issue 17).

A real ``whirr server`` is SIGSTOPped and SIGCONTed under a real Python worker (15 s
lease, heartbeats every 5 s, 1 s of kill grace, so it fences 12.85 s after its last
renewal got through). A stall shorter than lease - margin - heartbeat (7.85 s) restarts
no job: the renewals that waited in the server's sockets are taken before any lease is
reaped. A longer one: the worker stops its jobs itself, and the server, which extends
every running lease by its own stall, requeues each exactly once, saying why, and the
next attempts do not overlap the stopped ones.
"""

from __future__ import annotations

import os
import signal
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from fencing_env import LEASE, StartWorker, history, intervals, logs, overlap, workers, write_job
from server_process import ServerProcess, wait_for

from whirr.client import WhirrClient

pytestmark = pytest.mark.skipif(sys.platform != "linux", reason="the workers are Linux-only")


@pytest.fixture
def server(tmp_path: Path) -> Iterator[ServerProcess]:
    proc = ServerProcess(tmp_path / "srv")
    yield proc
    if proc.proc.poll() is None:
        os.kill(proc.proc.pid, signal.SIGCONT)  # never leave it stopped
    proc.stop()


@pytest.fixture
def start_worker() -> Iterator[StartWorker]:
    yield from workers("python")


def heartbeats(server: ServerProcess, job_id: int) -> int:
    with WhirrClient(server.url, token=server.token) as client:
        events = client.events(follow=False, types=["job.heartbeat"])
        return sum(1 for e in events if e.event.get("job_id") == job_id)


def stall(server: ServerProcess, seconds: float) -> None:
    """SIGSTOP the server for ``seconds``, then SIGCONT it."""
    os.kill(server.proc.pid, signal.SIGSTOP)
    try:
        time.sleep(seconds)  # the fault itself: the server is frozen this long
    finally:
        os.kill(server.proc.pid, signal.SIGCONT)


def test_a_stall_shorter_than_the_fencing_slack_restarts_no_job(
    server: ServerProcess, start_worker: StartWorker, tmp_path: Path
) -> None:
    workdir = tmp_path / "wd"
    command = write_job(workdir)
    with WhirrClient(server.url, token=server.token) as client:
        job_id = client.submit(command, str(workdir)).job_id
        start_worker(server, server.url, "steady")
        wait_for(lambda: heartbeats(server, job_id) >= 1, timeout=30)
        stall(server, 5.0)
        before = heartbeats(server, job_id)
        # Renewals go on: the job keeps its attempt and its worker.
        wait_for(lambda: heartbeats(server, job_id) >= before + 2, timeout=LEASE)
        job = client.get_job(job_id)
        context = f"{history(server, job_id)}\n{logs(server)}"
        assert (job.status, job.attempt, job.worker_id) == ("running", 1, "steady"), context
        assert [h for h in history(server, job_id) if h[0] == "job.requeued"] == [], context
        assert sorted(intervals(workdir)) == [1], context
        assert "fenced" not in logs(server), context
        client.cancel(job_id)


def test_a_longer_stall_fences_and_requeues_each_running_job_once(
    server: ServerProcess, start_worker: StartWorker, tmp_path: Path
) -> None:
    workdirs = [tmp_path / "wd1", tmp_path / "wd2"]
    with WhirrClient(server.url, token=server.token) as client:
        ids = [client.submit(write_job(wd), str(wd)).job_id for wd in workdirs]
        start_worker(server, server.url, "one")
        start_worker(server, server.url, "two")
        wait_for(lambda: all(heartbeats(server, i) >= 1 for i in ids), timeout=30)
        stall(server, 14.0)  # past the fence point (12.85 s after the last renewal)
        done = [
            wait_for(
                lambda i=i: (j := client.get_job(i)).status == "completed" and j,
                timeout=LEASE + 30,
            )
            for i in ids
        ]
        for job, wd in zip(done, workdirs, strict=True):
            spans = intervals(wd)
            context = f"{spans}\n{history(server, job.id)}\n{logs(server)}"
            assert job.attempt == 2, context
            requeues = [h for h in history(server, job.id) if h[0] == "job.requeued"]
            assert len(requeues) == 1, context
            assert "the server stalled for" in requeues[0][2], context
            assert spans[1][1] is not None, context  # the worker stopped attempt 1 itself
            measured = overlap(spans)
            print(f"job {job.id}: overlap {measured * 1000:.0f} ms")
            assert measured <= 0, context
        assert logs(server).count("(fenced)") >= 2
