"""A remote worker (``whirr worker --server``) schedules like a local one: it packs GPUs
(FAKE GPUs through ``WHIRR_FAKE_GPUS``), runs several jobs at once (``--slots``), runs a
job that needs two GPUs, and honours priorities and dependencies."""

from __future__ import annotations

import signal
import subprocess
import sys
from pathlib import Path

from server_process import WHIRR, ServerProcess, wait_for, worker_output

from whirr.client import WhirrClient

TWO_GPUS = {"WHIRR_FAKE_GPUS": "2"}

# Writes the job's CUDA_VISIBLE_DEVICES to DIR/<job id>, then waits (60 s at most) until N
# jobs did: passing it proves N jobs ran at the same time.
BARRIER = """\
import os, sys, time, pathlib
where, n = pathlib.Path(sys.argv[1]), int(sys.argv[2])
(where / os.environ["WHIRR_JOB_ID"]).write_text(os.environ.get("CUDA_VISIBLE_DEVICES", "?"))
deadline = time.monotonic() + 60
while len(list(where.iterdir())) < n:
    if time.monotonic() > deadline:
        sys.exit(3)
    time.sleep(0.02)
"""


def remote_worker(
    server: ServerProcess, *args: str, env: dict[str, str] | None = None
) -> subprocess.Popen[bytes]:
    """``whirr worker --server`` with extra environment (a FAKE GPU inventory)."""
    n = len(list(server.logs_dir.glob("worker-*.log")))
    with open(server.logs_dir / f"worker-{n}.log", "wb") as log:
        return subprocess.Popen(
            [*WHIRR, "worker", "--server", server.url, "-d", str(server.data_dir), *args],
            env={**server.env, **(env or {})},
            stdout=log,
            stderr=subprocess.STDOUT,
        )


def stop(worker: subprocess.Popen[bytes], server: ServerProcess) -> None:
    worker.send_signal(signal.SIGTERM)
    assert worker.wait(timeout=30) == 0, worker_output(server)


def barrier(tmp_path: Path, n: int) -> tuple[list[str], Path]:
    script = tmp_path / "barrier.py"
    script.write_text(BARRIER)
    where = tmp_path / f"met-{n}"
    where.mkdir()
    return [sys.executable, str(script), str(where), str(n)], where


def test_a_remote_worker_packs_gpus_and_runs_a_two_gpu_job(
    server: ServerProcess, tmp_path: Path
) -> None:
    command, met = barrier(tmp_path, 2)
    pair_out = tmp_path / "pair.txt"
    with WhirrClient(server.url, token=server.token) as client:
        one = client.submit(command, str(tmp_path), gpus=1).job_id
        other = client.submit(command, str(tmp_path), gpus=1).job_id
        pair = client.submit(
            ["sh", "-c", f'echo "$CUDA_VISIBLE_DEVICES" > {pair_out}'], str(tmp_path), gpus=2
        ).job_id
        worker = remote_worker(server, "--gpus", "all", "--slots", "1", env=TWO_GPUS)
        try:
            done = wait_for(
                lambda: (j := client.get_job(pair)).status not in ("queued", "running") and j,
                timeout=90,
            )
        finally:
            stop(worker, server)
        assert done.status == "completed", worker_output(server)
        # Both one-GPU jobs passed the barrier: they ran at once, each on its own GPU.
        assert [client.get_job(j).status for j in (one, other)] == ["completed", "completed"]
        assert sorted((met / str(j)).read_text() for j in (one, other)) == ["0", "1"]
        assert pair_out.read_text().strip() == "0,1"
        workers = {w.id: w for w in client.list_workers()}
        assert [w.gpu_ids for w in workers.values()] == [[0, 1]]


def test_a_remote_worker_runs_as_many_cpu_jobs_as_it_has_slots(
    server: ServerProcess, tmp_path: Path
) -> None:
    command, _ = barrier(tmp_path, 2)
    with WhirrClient(server.url, token=server.token) as client:
        pair = [client.submit(command, str(tmp_path)).job_id for _ in range(2)]
        third = client.submit(["true"], str(tmp_path)).job_id
        worker = remote_worker(server, "--slots", "2", "--exit-when-empty")
        assert worker.wait(timeout=90) == 0, worker_output(server)
        jobs = [client.get_job(j) for j in pair]
        assert [j.status for j in jobs] == ["completed", "completed"], worker_output(server)
        last = client.get_job(third)
        assert last.status == "completed"
        # Two slots: the third job started only once one of the first two had ended.
        ends = [j.finished_at for j in jobs if j.finished_at is not None]
        assert last.started_at is not None and last.started_at >= min(ends)


def test_a_remote_worker_honours_priorities_and_dependencies(
    server: ServerProcess, tmp_path: Path
) -> None:
    order = tmp_path / "order.txt"
    with WhirrClient(server.url, token=server.token) as client:

        def submit(word: str, **options: object) -> int:
            command = ["sh", "-c", f"echo {word} >> {order}"]
            return client.submit(command, str(tmp_path), gpus=2, **options).job_id  # type: ignore[arg-type]

        low = submit("low")
        high = submit("high", priority=5)
        bad = client.submit(
            ["sh", "-c", f"echo bad >> {order}; exit 3"], str(tmp_path), gpus=2
        ).job_id
        after_bad = submit("x", after=[bad], priority=9)
        chained = submit("y", after=[after_bad])
        anyway = submit("anyway", after=[bad, high], after_any=True, priority=9)
        submit("mid", priority=3)
        # Two GPUs, every job needs both: one job at a time, in the claim order.
        worker = remote_worker(server, "--gpus", "all", "--exit-when-empty", env=TWO_GPUS)
        assert worker.wait(timeout=90) == 0, worker_output(server)
        assert order.read_text().split() == ["high", "mid", "low", "bad", "anyway"]
        cancelled = client.get_job(after_bad)
        assert (cancelled.status, cancelled.error) == ("cancelled", f"dependency #{bad} failed")
        assert client.get_job(chained).error == f"dependency #{after_bad} cancelled"
        assert client.get_job(anyway).status == "completed"
        assert client.get_job(low).status == "completed"
