"""Remote workers against a real server: exactly-once under 8 workers, kill -9 of a worker
(requeue after the lease, completion elsewhere, the old child gone), cancel end to end."""

from __future__ import annotations

import os
import signal
import subprocess
from collections import Counter
from pathlib import Path

from server_process import (
    WHIRR,
    ServerProcess,
    alive,
    start_remote_worker,
    wait_for,
    worker_output,
)

from whirr.client import WhirrClient


def client_for(server: ServerProcess) -> WhirrClient:
    return WhirrClient(server.url, token=server.token)


def test_eight_remote_workers_run_400_jobs_exactly_once(
    server: ServerProcess, tmp_path: Path
) -> None:
    record = tmp_path / "ran.txt"
    with client_for(server) as client:
        for _ in range(400):
            # One short line per job (O_APPEND: concurrent writers never interleave).
            client.submit(["sh", "-c", f'echo "$WHIRR_JOB_ID" >> {record}'], str(tmp_path))
        workers = [start_remote_worker(server, "--exit-when-empty", "-q") for _ in range(8)]
        for w in workers:
            assert w.wait(timeout=300) == 0, worker_output(server)
        ran = Counter(record.read_text().split())
        assert len(ran) == 400 and set(ran.values()) == {1}
        status = client.status()
        assert (status.completed, status.queued, status.running, status.failed) == (400, 0, 0, 0)
        starts = Counter(
            e.event["job_id"] for e in client.events(follow=False, types=["job.started"])
        )
        claims = Counter(
            e.event["job_id"] for e in client.events(follow=False, types=["job.claimed"])
        )
        assert len(starts) == 400 and set(starts.values()) == {1}
        assert set(claims.values()) == {1}
        assert (
            len({e.event["worker_id"] for e in client.events(follow=False, types=["job.started"])})
            > 1
        )  # the work was shared
        one = client.get_job(7)
        assert (server.data_dir / "runs" / one.run_id / "meta.json").exists()


def test_kill_9_of_a_remote_worker_requeues_after_the_lease(
    server: ServerProcess, tmp_path: Path
) -> None:
    pid_file = tmp_path / "child.pid"
    script = (
        f"if [ ! -e {pid_file} ]; then echo $$ > {pid_file}; sleep 600; "
        "else echo second attempt; fi"
    )
    with client_for(server) as client:
        job_id = client.submit(["sh", "-c", script], str(tmp_path)).job_id
        first = start_remote_worker(
            server,
            *("--lease-seconds", "10", "--heartbeat-interval", "1", "--kill-grace-period", "1"),
            *("--id", "doomed"),
        )
        child = int(wait_for(lambda: pid_file.exists() and pid_file.read_text().strip()))
        assert client.get_job(job_id).worker_id == "doomed"
        os.kill(first.pid, signal.SIGKILL)
        first.wait(timeout=10)
        # The worker's reaper kills the job's group at once; the lease runs out later.
        wait_for(lambda: not alive(child), timeout=10)
        assert client.get_job(job_id).status == "running"
        second = start_remote_worker(server, "--id", "rescuer")
        try:
            job = wait_for(
                lambda: (j := client.get_job(job_id)).status == "completed" and j, timeout=60
            )
        finally:
            second.send_signal(signal.SIGTERM)
            second.wait(timeout=30)
        assert (job.worker_id, job.attempt) == ("rescuer", 2)
        assert client.logs(job_id).endswith(b"second attempt\n")
        requeued = list(client.events(follow=False, types=["job.requeued"]))
        assert [e.event["worker_id"] for e in requeued] == ["doomed"]


def test_cancel_from_the_cli_stops_a_remote_job(server: ServerProcess, tmp_path: Path) -> None:
    pid_file = tmp_path / "child.pid"
    worker = start_remote_worker(
        server, "--lease-seconds", "10", "--heartbeat-interval", "0.5", "--kill-grace-period", "2"
    )
    try:
        env = server.env
        submit = subprocess.run(
            [*WHIRR, "submit", "--", "sh", "-c", f"echo $$ > {pid_file}; exec sleep 600"],
            cwd=tmp_path,
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert submit.returncode == 0, submit.stderr
        job_id = int(submit.stdout.split("#")[1])
        child = int(wait_for(lambda: pid_file.exists() and pid_file.read_text().strip()))
        cancel = subprocess.run(
            [*WHIRR, "cancel", str(job_id)],
            cwd=tmp_path,
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert cancel.returncode == 0 and "Cancel requested" in cancel.stdout
        with client_for(server) as client:
            job = wait_for(
                lambda: (j := client.get_job(job_id)).status != "running" and j, timeout=30
            )
        assert (job.status, job.exit_code) == ("cancelled", -signal.SIGTERM)
        assert not alive(child)
    finally:
        worker.send_signal(signal.SIGTERM)
        assert worker.wait(timeout=30) == 0, worker_output(server)


def test_a_remote_job_past_its_timeout_ends_timed_out(
    server: ServerProcess, tmp_path: Path
) -> None:
    with client_for(server) as client:
        job_id = client.submit(["sleep", "600"], str(tmp_path), timeout_seconds=1).job_id
        worker = start_remote_worker(server, "--exit-when-empty", "--kill-grace-period", "1")
        assert worker.wait(timeout=60) == 0, worker_output(server)
        job = client.get_job(job_id)
        assert (job.status, job.exit_code) == ("timed_out", -signal.SIGTERM)
        assert job.error == "timed out after 1s"
