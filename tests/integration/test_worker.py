"""The local worker with real processes: exactly-once, kill -9 safety, cancel, drain."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest
from server_process import alive, wait_for

from whirr.events import JobStarted
from whirr.project import Project
from whirr.services import Jobs

WORKER = [sys.executable, "-m", "whirr.cli.main", "worker"]
#: Every worker a test started, so none outlives a failed test.
STARTED: list[subprocess.Popen[bytes]] = []


@pytest.fixture(autouse=True)
def no_worker_left() -> Iterator[None]:
    yield
    while STARTED:
        worker = STARTED.pop()
        if worker.poll() is None:
            worker.kill()
        worker.wait()


def start_worker(
    project: Project, *args: str, env: dict[str, str] | None = None
) -> subprocess.Popen[bytes]:
    """A real `whirr worker` process; its output goes to worker-<n>.log in the project."""
    logs = sorted(project.root.glob("worker-*.log"))
    with open(project.root / f"worker-{len(logs)}.log", "wb") as log:
        worker = subprocess.Popen(
            [*WORKER, *args],
            cwd=project.root,
            env={**os.environ, **(env or {})},
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    STARTED.append(worker)
    return worker


def worker_output(project: Project) -> str:
    return "\n".join(p.read_text() for p in sorted(project.root.glob("worker-*.log")))


def wait_output(project: Project, text: str, times: int = 1, timeout: float = 15) -> None:
    """Wait until the workers' output says ``text`` ``times`` times in all (a signal one
    has counted; earlier workers of the test said it too)."""
    wait_for(lambda: worker_output(project).count(text) >= times, timeout=timeout)


def read_pid(path: Path) -> int:
    return int(wait_for(lambda: (path.exists() and path.read_text().strip()) or None))


def test_four_workers_run_400_jobs_exactly_once(project: Project, store) -> None:
    record = project.root / "ran.txt"
    jobs = Jobs(store)
    for _ in range(400):
        jobs.submit(["sh", "-c", f'echo "$WHIRR_JOB_ID" >> {record}'], str(project.root))
    workers = [start_worker(project, "--exit-when-empty", "-q") for _ in range(4)]
    for w in workers:
        assert w.wait(timeout=240) == 0, worker_output(project)
    ran = Counter(record.read_text().split())
    assert len(ran) == 400 and set(ran.values()) == {1}
    assert store.job_counts() == {"completed": 400}
    starts = Counter(
        r.event.job_id for r in store.read(types=["job.started"]) if isinstance(r.event, JobStarted)
    )
    assert set(starts.values()) == {1} and len(starts) == 400
    assert len({r.event.worker_id for r in store.read(types=["job.started"])}) > 1


def test_job_gets_its_environment_and_output_log(project: Project, store) -> None:
    job = Jobs(store).submit(
        [
            "sh",
            "-c",
            'echo "$WHIRR_JOB_ID $WHIRR_RUN_ID $CUDA_VISIBLE_DEVICES $PYTHONUNBUFFERED"'
            '; echo oops >&2; echo "$WHIRR_RUN_DIR" > where',
        ],
        str(project.root),
    )
    worker = start_worker(project, "--exit-when-empty", "--gpu", "3")
    assert worker.wait(timeout=30) == 0
    run_dir = project.run_dir(job.run_id)
    assert (run_dir / "output.log").read_text() == f"{job.id} job-{job.id} 3 1\noops\n"
    assert (project.root / "where").read_text().strip() == str(run_dir)
    run = store.run(job.run_id)
    assert run is not None and run.status == "completed" and run.job_id == job.id
    import json

    meta = json.loads((run_dir / "meta.json").read_text())
    assert meta["status"] == "completed" and meta["job_id"] == job.id


def test_kill_9_of_worker_kills_job_tree_and_job_is_requeued(project: Project, store) -> None:
    marker = project.root / "first-attempt"
    leader_pid, child_pid = project.root / "leader.pid", project.root / "child.pid"
    script = (
        f"if [ -e {marker} ]; then exit 0; fi; touch {marker}; echo $$ > {leader_pid}; "
        f"sleep 300 & echo $! > {child_pid}; wait"
    )
    Jobs(store).submit(["sh", "-c", script], str(project.root))
    first = start_worker(project)
    leader, child = read_pid(leader_pid), read_pid(child_pid)
    first.send_signal(signal.SIGKILL)
    first.wait()
    # The leader dies by PDEATHSIG, the grandchild by the worker's reaper.
    wait_for(lambda: not alive(leader) and not alive(child), timeout=3)
    second = start_worker(project, "--exit-when-empty")
    assert second.wait(timeout=60) == 0, worker_output(project)
    job = Jobs(store).get(1)
    assert (job.status, job.attempt) == ("completed", 2)
    reasons = [r.event.reason for r in store.read(types=["job.requeued"])]
    assert reasons[0].startswith("worker ")


def test_cancel_running_job_stops_process_group(project: Project, store) -> None:
    pid_file = project.root / "pid"
    jobs = Jobs(store)
    jobs.submit(["sh", "-c", f"echo $$ > {pid_file}; exec sleep 300"], str(project.root))
    worker = start_worker(project, "--exit-when-empty")
    pid = read_pid(pid_file)
    wait_for(lambda: jobs.get(1).status == "running" and jobs.get(1).started_at)
    jobs.cancel(1)
    wait_for(lambda: jobs.get(1).status == "cancelled", timeout=5)
    assert not alive(pid)
    assert jobs.get(1).exit_code == -signal.SIGTERM
    assert store.run("job-1").status == "cancelled"
    assert worker.wait(timeout=10) == 0


def test_job_ignoring_sigterm_is_killed_after_grace(project: Project, store) -> None:
    pid_file = project.root / "pid"
    jobs = Jobs(store)
    jobs.submit(
        ["sh", "-c", f"trap '' TERM; echo $$ > {pid_file}; while :; do sleep 0.05; done"],
        str(project.root),
    )
    worker = start_worker(project, "--exit-when-empty")
    pid = read_pid(pid_file)
    jobs.cancel(1)
    wait_for(lambda: jobs.get(1).status == "cancelled", timeout=10)
    assert jobs.get(1).exit_code == -signal.SIGKILL
    assert not alive(pid)
    worker.wait(timeout=10)


def test_job_that_cannot_start_fails_and_worker_goes_on(project: Project, store) -> None:
    jobs = Jobs(store)
    gone = project.root / "gone"
    gone.mkdir()
    jobs.submit(["true"], str(gone))
    gone.rmdir()  # the workdir vanished after submit
    jobs.submit(["true"], str(project.root))
    worker = start_worker(project, "--exit-when-empty")
    assert worker.wait(timeout=30) == 0, worker_output(project)
    failed = jobs.get(1)
    assert failed.status == "failed" and "does not exist" in (failed.error or "")
    assert "does not exist" in (project.run_dir("job-1") / "output.log").read_text()
    assert jobs.get(2).status == "completed"


def test_first_sigterm_drains(project: Project, store) -> None:
    jobs = Jobs(store)
    flag = project.root / "go"
    pid_file = project.root / "pid"
    jobs.submit(
        ["sh", "-c", f"echo $$ > {pid_file}; while [ ! -e {flag} ]; do sleep 0.05; done"],
        str(project.root),
    )
    jobs.submit(["true"], str(project.root))
    worker = start_worker(project)
    read_pid(pid_file)
    worker.send_signal(signal.SIGTERM)
    wait_output(project, "Draining")
    assert worker.poll() is None  # still finishing the job
    flag.touch()
    assert worker.wait(timeout=10) == 0
    assert jobs.get(1).status == "completed"
    assert jobs.get(2).status == "queued"  # drained: took no new job


def test_second_sigterm_stops_jobs_with_sigterm_and_ends_them_cancelled(
    project: Project, store
) -> None:
    """The second stop request SIGTERMs the job (it may checkpoint), which ends
    ``cancelled`` (\"worker interrupted\"), not ``failed``, and is not retried."""
    jobs = Jobs(store)
    pid_file, saved = project.root / "pid", project.root / "checkpoint"
    script = (
        f"trap 'echo saved > {saved}; exit 3' TERM; echo $$ > {pid_file}; "
        "while :; do sleep 0.05; done"
    )
    jobs.submit(["sh", "-c", script], str(project.root), retries=2)
    worker = start_worker(project)
    pid = read_pid(pid_file)
    wait_for(lambda: jobs.get(1).started_at is not None)
    worker.send_signal(signal.SIGTERM)
    wait_output(project, "Draining")  # counted: the next signal is the second one
    assert alive(pid) and worker.poll() is None
    worker.send_signal(signal.SIGTERM)
    assert worker.wait(timeout=15) == 0, worker_output(project)
    assert not alive(pid)
    assert saved.read_text().strip() == "saved"  # SIGTERM first: it could checkpoint
    job = jobs.get(1)
    assert (job.status, job.exit_code, job.error) == ("cancelled", 3, "worker interrupted")
    assert job.attempt == 1 and not list(store.read(types=["job.requeued"]))
    assert store.run("job-1").status == "cancelled"


def test_second_stop_kills_after_the_grace_and_a_third_at_once(project: Project, store) -> None:
    jobs = Jobs(store)
    pid_file = project.root / "pid"
    script = f"trap '' TERM; echo $$ > {pid_file}; while :; do sleep 0.05; done"
    jobs.submit(["sh", "-c", script], str(project.root), retries=1)
    worker = start_worker(project)  # kill grace 1 s (the project's config)
    pid = read_pid(pid_file)
    wait_for(lambda: jobs.get(1).started_at is not None)
    worker.send_signal(signal.SIGINT)
    wait_output(project, "Draining")
    worker.send_signal(signal.SIGINT)
    assert worker.wait(timeout=15) == 0, worker_output(project)
    assert not alive(pid)
    job = jobs.get(1)
    assert (job.status, job.exit_code, job.error) == ("cancelled", -9, "worker interrupted")

    # A long grace: the third request kills at once instead of waiting it out.
    project.config_path.write_text(
        project.config_path.read_text()
        .replace("kill_grace_period: 1", "kill_grace_period: 300")
        .replace("heartbeat_timeout: 1.5", "heartbeat_timeout: 310")  # fences in: > grace
    )
    pid_file.unlink()
    jobs.submit(["sh", "-c", script], str(project.root), retries=1)
    worker = start_worker(project)
    pid = read_pid(pid_file)
    wait_for(lambda: jobs.get(2).started_at is not None)
    worker.send_signal(signal.SIGINT)
    wait_output(project, "Draining", times=2)  # this worker's, not the first one's
    worker.send_signal(signal.SIGINT)
    wait_output(project, "Second stop request", times=2)
    assert alive(pid)  # it ignores SIGTERM; the grace is 300 s
    worker.send_signal(signal.SIGINT)
    assert worker.wait(timeout=15) == 0, worker_output(project)
    assert not alive(pid)
    job = jobs.get(2)
    assert (job.status, job.exit_code, job.error) == ("cancelled", -9, "worker interrupted")
    assert job.attempt == 1


def test_idle_worker_wakes_on_submit(project: Project, store) -> None:
    worker = start_worker(project)
    try:
        wait_for(lambda: store.workers())
        job = Jobs(store).submit(["true"], str(project.root))
        wait_for(lambda: Jobs(store).get(job.id).status == "completed", timeout=10)
    finally:
        worker.send_signal(signal.SIGINT)
        assert worker.wait(timeout=10) == 0, worker_output(project)
    assert store.workers()[0].stopped


def test_worker_that_lost_its_lease_kills_its_job(project: Project, store) -> None:
    """A worker paused past its lease finds the job requeued and kills its own copy."""
    pid_file = project.root / "pid"
    jobs = Jobs(store)
    jobs.submit(["sh", "-c", f"echo $$ >> {pid_file}; exec sleep 300"], str(project.root))
    worker = start_worker(project)
    pid = read_pid(pid_file)
    # The child writes its pid while the worker may still be committing `started`: a
    # worker stopped inside that transaction would hold the write lock for the test.
    wait_for(lambda: jobs.get(1).started_at is not None)
    worker.send_signal(signal.SIGSTOP)
    try:
        time.sleep(2.0)  # past the 1.5 s lease
        assert [j.id for j in jobs.requeue_expired()] == [1]
    finally:
        worker.send_signal(signal.SIGCONT)
    wait_for(lambda: not alive(pid), timeout=5)
    assert "lease lost" in worker_output(project)
    # The worker is healthy again: it claims the requeued job as attempt 2.
    wait_for(lambda: jobs.get(1).status == "running" and jobs.get(1).attempt == 2)
    worker.send_signal(signal.SIGINT)
    wait_output(project, "Draining")
    worker.send_signal(signal.SIGINT)
    assert worker.wait(timeout=10) == 0
