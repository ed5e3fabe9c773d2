"""A job no live worker can run says why in ``whirr status N``: over the API (``waiting``),
over ``--server`` and locally, with a real worker offering one GPU and a job needing two."""

from __future__ import annotations

import signal
import subprocess
from pathlib import Path

from cli_runner import run_cli
from server_process import WHIRR, ServerProcess, wait_for
from test_remote_scheduling import remote_worker, stop

from whirr.client import WhirrClient
from whirr.project import Project

UNSCHEDULABLE = "unschedulable: needs 2 GPU(s); the largest live worker has 1"


def test_a_job_no_remote_worker_can_run_says_why(server: ServerProcess, tmp_path: Path) -> None:
    with WhirrClient(server.url, token=server.token) as client:
        client.cancel_all_queued()
        job_id = client.submit(["true"], str(tmp_path), gpus=2).job_id
        worker = remote_worker(server, "--gpus", "0", "--id", "one-gpu")
        try:
            wait_for(lambda: any(w.id == "one-gpu" and w.online for w in client.list_workers()))
            job = client.get_job(job_id)
            assert (job.status, job.waiting) == ("queued", UNSCHEDULABLE)
            shown = run_cli(
                "status", str(job_id), "--server", server.url, cwd=tmp_path, env=server.env
            )
            assert shown.returncode == 0, shown.stderr
            assert f"Waiting:   {UNSCHEDULABLE}" in shown.stdout
        finally:
            stop(worker, server)
        client.cancel(job_id)


def test_a_job_no_local_worker_can_run_says_why(project: Project, store: object) -> None:
    cwd = project.root
    submitted = run_cli("submit", "--gpus", "2", "--", "true", cwd=cwd, check=True)
    job_id = int(submitted.stdout.split("#")[1].split()[0])
    with open(cwd / "worker.log", "wb") as log:
        worker = subprocess.Popen(
            [*WHIRR, "worker", "--gpus", "0", "--id", "one-gpu"],
            cwd=cwd,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    try:
        wait_for(lambda: store.worker("one-gpu") is not None)  # type: ignore[attr-defined]
        shown = run_cli("status", str(job_id), cwd=cwd, check=True)
        assert f"Waiting:   {UNSCHEDULABLE}" in shown.stdout
    finally:
        worker.send_signal(signal.SIGTERM)
        assert worker.wait(timeout=30) == 0, (cwd / "worker.log").read_text()
