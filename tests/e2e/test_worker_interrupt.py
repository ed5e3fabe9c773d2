"""End to end: an operator's Ctrl+C on a remote worker is truthful (issue 17, item 5).

Real ``whirr server``, real workers (``whirr worker --server`` and the Rust
``whirr-worker``), real jobs. The first SIGINT/SIGTERM drains; the second SIGTERMs every
job (it may checkpoint) and SIGKILLs it after the kill grace; a third kills at once. The
job ends ``cancelled`` with the reason "worker interrupted", keeps its exit code, and no
retry is scheduled (it has retries left: an operator's stop is not a failure).

Each signal is sent only once the worker has shown it counted the previous one (its
"draining"/"stopping" line): two signals sent close together may reach it as one.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from server_process import ServerProcess, alive, wait_for
from worker_processes import WorkerProcs, worker_command

from whirr.client import WhirrClient

pytestmark = pytest.mark.skipif(sys.platform != "linux", reason="the workers are Linux-only")

StartWorker = Callable[[ServerProcess, float], subprocess.Popen[bytes]]

#: Says it checkpointed on SIGTERM, then exits 3; runs until then (at most ~60 s).
CHECKPOINTS = (
    "trap 'echo saved > checkpoint; exit 3' TERM; echo $$ > pid; "
    "for i in $(seq 1200); do sleep 0.05; done"
)
#: Ignores SIGTERM: only a SIGKILL ends it.
STUBBORN = "trap '' TERM; echo $$ > pid; for i in $(seq 1200); do sleep 0.05; done"


def command(kind: str, server: ServerProcess, grace: float) -> list[str]:
    lease = f"{grace + 30:.0f}"  # workers refuse a lease that cannot cover the grace
    return worker_command(kind, server.url, server.data_dir, lease=lease, grace=f"{grace:g}")


@pytest.fixture(params=["python", "rust"])
def start_worker(request: pytest.FixtureRequest) -> Iterator[StartWorker]:
    kind = str(request.param)
    procs = WorkerProcs()

    def start(server: ServerProcess, grace: float) -> subprocess.Popen[bytes]:
        return procs.spawn(command(kind, server, grace), server.env, server.logs_dir / "worker.log")

    yield start
    procs.kill_all()


def log(server: ServerProcess) -> str:
    return (server.logs_dir / "worker.log").read_text(errors="replace")


def until(server: ServerProcess, probe: Callable[[], object], what: str) -> object:
    """Wait (30 s at most) until ``probe`` holds; a failure shows the worker's log."""
    try:
        return wait_for(probe, timeout=30)
    except AssertionError:
        pytest.fail(f"no {what} within 30 s; the worker said:\n{log(server)}")


def said(server: ServerProcess, text: str) -> None:
    """Wait until the worker's log says ``text`` (any case)."""
    until(server, lambda: text.lower() in log(server).lower(), repr(text))


def running_job(server: ServerProcess, tmp_path: Path, script: str) -> tuple[WhirrClient, int]:
    client = WhirrClient(server.url, token=server.token)
    job_id = client.submit(["sh", "-c", script], str(tmp_path), retries=2).job_id
    return client, job_id


def started(server: ServerProcess, client: WhirrClient, job_id: int, tmp_path: Path) -> int:
    """The job's shell pid, once the server has its start too."""
    pid_file = tmp_path / "pid"
    pid = until(server, lambda: pid_file.exists() and pid_file.read_text().strip(), "pid file")
    until(server, lambda: client.get_job(job_id).started_at is not None, "start")
    return int(str(pid))


def no_retry(client: WhirrClient, job_id: int) -> bool:
    kinds = ["job.requeued", "job.retry_scheduled"]
    return not [e for e in client.events(follow=False, types=kinds) if e.event["job_id"] == job_id]


def test_second_signal_sigterms_the_job_which_ends_cancelled_without_a_retry(
    server: ServerProcess, start_worker: StartWorker, tmp_path: Path
) -> None:
    client, job_id = running_job(server, tmp_path, CHECKPOINTS)
    with client:
        worker = start_worker(server, 30.0)
        pid = started(server, client, job_id, tmp_path)
        worker.send_signal(signal.SIGINT)
        said(server, "draining")
        assert alive(pid) and worker.poll() is None  # the first signal only drains
        worker.send_signal(signal.SIGINT)
        assert worker.wait(timeout=30) == 0, log(server)
        assert not alive(pid)
        assert (tmp_path / "checkpoint").read_text() == "saved\n"  # SIGTERM, not SIGKILL
        job = client.get_job(job_id)
        assert (job.status, job.exit_code, job.error, job.attempt) == (
            "cancelled",
            3,
            "worker interrupted",
            1,
        ), log(server)
        assert no_retry(client, job_id)


def test_third_signal_kills_at_once_without_waiting_out_the_grace(
    server: ServerProcess, start_worker: StartWorker, tmp_path: Path
) -> None:
    client, job_id = running_job(server, tmp_path, STUBBORN)
    with client:
        worker = start_worker(server, 300.0)
        pid = started(server, client, job_id, tmp_path)
        worker.send_signal(signal.SIGTERM)
        said(server, "draining")
        worker.send_signal(signal.SIGTERM)
        said(server, "stopping the running job")
        assert alive(pid)  # it ignores SIGTERM and the grace is 300 s
        third = time.monotonic()
        worker.send_signal(signal.SIGTERM)
        assert worker.wait(timeout=30) == 0, log(server)
        assert time.monotonic() - third < 15
        assert not alive(pid)
        job = client.get_job(job_id)
        assert (job.status, job.exit_code, job.error) == (
            "cancelled",
            -signal.SIGKILL,
            "worker interrupted",
        ), log(server)
        assert no_retry(client, job_id)
