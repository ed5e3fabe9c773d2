"""Scheduling end to end: the real CLI, real worker processes and a FAKE GPU inventory
(``WHIRR_FAKE_GPUS``, the testing hook of ``whirr.gpus``): GPU packing, priorities,
dependencies, retries, timeouts, drain, ``whirr workers``, unschedulable jobs, hooks."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

from cli_runner import run_cli

from whirr.project import Project
from whirr.services import Jobs

FAKE_GPUS = {"WHIRR_FAKE_GPUS": "4"}
WORKER = [sys.executable, "-m", "whirr.cli.main", "worker"]

# Each job appends "<job> <start> <end> <CUDA_VISIBLE_DEVICES>" (monotonic clock, shared by
# every process on the machine) so the test can check who held which GPU when.
RECORD_SCRIPT = """\
import os, sys, time
start = time.monotonic()
time.sleep(float(sys.argv[1]))
with open(sys.argv[2], "a") as out:
    devices = os.environ.get("CUDA_VISIBLE_DEVICES", "?")
    out.write(f"{os.environ['WHIRR_JOB_ID']} {start} {time.monotonic()} {devices}\\n")
"""


def wait_for(predicate, timeout: float = 30.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if value := predicate():
            return value
        time.sleep(0.02)
    raise AssertionError(f"condition not met within {timeout}s")


def alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().split(") ")[1][0] != "Z"  # a zombie is dead for our purposes
    except (FileNotFoundError, ProcessLookupError):
        return False


def read_pid(path: Path) -> int:
    return int(wait_for(lambda: (path.exists() and path.read_text().strip()) or None))


def worker_output(project: Project) -> str:
    return "\n".join(p.read_text() for p in sorted(project.root.glob("worker-*.log")))


def configure(project: Project, extra: str = "") -> None:
    project.config_path.write_text(
        "heartbeat_interval: 0.2\nheartbeat_timeout: 1.5\nkill_grace_period: 1\n"
        "poll_interval: 1\nmax_attempts: 3\nretry_delay: 0.2\n" + extra
    )


def start(project: Project, *args: str) -> subprocess.Popen[bytes]:
    logs = sorted(project.root.glob("worker-*.log"))
    with open(project.root / f"worker-{len(logs)}.log", "wb") as log:
        return subprocess.Popen(
            [*WORKER, *args],
            cwd=project.root,
            env={**os.environ, **FAKE_GPUS},
            stdout=log,
            stderr=subprocess.STDOUT,
        )


def cli(project: Project, *args: str) -> subprocess.CompletedProcess[str]:
    return run_cli(*args, cwd=project.root, env=FAKE_GPUS, check=True)


def submit(project: Project, *args: str) -> int:
    out = json.loads(cli(project, "submit", "--json", *args).stdout)
    return int(out["id"])


def test_gpu_sets_are_exclusive_and_match_cuda_visible_devices(project: Project, store) -> None:
    configure(project)
    record = project.root / "ran.txt"
    wants = [1, 2, 0, 1, 1, 2, 0, 1, 4, 1, 0, 2]
    ids = {}
    script = project.root / "record.py"
    script.write_text(RECORD_SCRIPT)
    for i, gpus in enumerate(wants):
        cmd = [sys.executable, str(script), str(0.3 + 0.1 * (i % 3)), str(record)]
        ids[submit(project, "--gpus", str(gpus), *cmd)] = gpus
    worker = start(project, "--gpus", "all", "--slots", "2", "--exit-when-empty")
    assert worker.wait(timeout=90) == 0, worker_output(project)
    rows = [line.split() for line in record.read_text().splitlines()]
    assert sorted(int(r[0]) for r in rows) == sorted(ids)
    spans = []
    for job_id, s, e, devices in (
        (int(a), float(b), float(c), d)
        for a, b, c, d in (r if len(r) == 4 else [*r, ""] for r in rows)
    ):
        seen = [] if devices in ("", "?") else [int(d) for d in devices.split(",")]
        assert len(seen) == ids[job_id], (job_id, devices)
        assert set(seen) <= {0, 1, 2, 3}
        claimed = Jobs(store).get(job_id)
        assert claimed.status == "completed"
        spans.append((s, e, set(seen), job_id))
    for i, (s1, e1, g1, j1) in enumerate(spans):
        for s2, e2, g2, j2 in spans[i + 1 :]:
            if s1 < e2 and s2 < e1:  # the two jobs overlapped in time
                assert not g1 & g2, f"jobs {j1} and {j2} shared GPUs {g1 & g2}"
    # Several jobs really ran at once (the point of packing).
    assert any(
        s2 < e1 and s1 < e2
        for s1, e1, _, _ in spans
        for s2, e2, _, _ in spans
        if (s1, e1) != (s2, e2)
    )


def test_priorities_dependencies_and_cascade(project: Project, store) -> None:
    configure(project)
    order = project.root / "order.txt"
    cli(project, "queue", "pause")
    low = submit(project, "sh", "-c", f"echo low >> {order}")
    high = submit(project, "-p", "5", "sh", "-c", f"echo high >> {order}")
    bad = submit(project, "sh", "-c", f"echo bad >> {order}; exit 3")
    after_bad = submit(project, "--after", str(bad), "-p", "9", "sh", "-c", f"echo x >> {order}")
    chained = submit(project, "--after", str(after_bad), "true")
    anyway = submit(
        project,
        "--after",
        f"{bad},{high}",
        "--after-any",
        "-p",
        "9",
        "sh",
        "-c",
        f"echo anyway >> {order}",
    )
    mid = submit(project, "sh", "-c", f"echo mid >> {order}")
    cli(project, "priority", str(mid), "3")
    cli(project, "queue", "resume")
    worker = start(project, "--exit-when-empty")
    assert worker.wait(timeout=60) == 0, worker_output(project)
    assert order.read_text().split() == ["high", "mid", "low", "bad", "anyway"]
    jobs = Jobs(store)
    assert (jobs.get(after_bad).status, jobs.get(after_bad).error) == (
        "cancelled",
        f"dependency #{bad} failed",
    )
    assert jobs.get(chained).error == f"dependency #{after_bad} cancelled"
    assert jobs.get(anyway).status == "completed" and jobs.get(low).status == "completed"


def test_retries_reuse_the_job_and_timeouts_kill_the_group(project: Project, store) -> None:
    configure(project)
    marker = project.root / "failed-once"
    flaky = submit(
        project,
        "--retries",
        "2",
        "sh",
        "-c",
        f"if [ -e {marker} ]; then exit 0; fi; touch {marker}; exit 1",
    )
    child = project.root / "child.pid"
    slow = submit(
        project,
        "--timeout",
        "1s",
        "--retries",
        "3",
        "sh",
        "-c",
        f"sleep 300 & echo $! > {child}; wait",
    )
    worker = start(project, "--slots", "2", "--exit-when-empty")
    pid = read_pid(child)
    assert worker.wait(timeout=60) == 0, worker_output(project)
    jobs = Jobs(store)
    job = jobs.get(flaky)
    assert (job.status, job.attempt, job.failed_attempts) == ("completed", 2, 1)
    retried = [r.event for r in store.read(types=["job.retry_scheduled"])]
    assert [(e.job_id, e.attempt, e.exit_code) for e in retried] == [(flaky, 1, 1)]  # type: ignore[attr-defined]
    timed = jobs.get(slow)
    assert (timed.status, timed.attempt, timed.error) == ("timed_out", 1, "timed out after 1s")
    assert not alive(pid)  # the whole process group went, not just the shell
    status = json.loads(cli(project, "status", str(flaky), "--json").stdout)
    assert (status["attempt"], status["failed_attempts"], status["retries"]) == (2, 1, 2)


def test_drain_workers_listing_and_unschedulable(project: Project, store) -> None:
    configure(project)
    flag = project.root / "go"
    busy = submit(project, "--gpus", "1", "sh", "-c", f"while [ ! -e {flag} ]; do sleep 0.05; done")
    worker = start(project, "--gpus", "0,1", "--id", "box")
    wait_for(lambda: Jobs(store).get(busy).status == "running")
    listed = json.loads(cli(project, "workers", "--json").stdout)["workers"]
    assert [
        (w["id"], w["gpu_ids"], w["slots"], w["current_job_ids"], w["status"]) for w in listed
    ] == [("box", [0, 1], 1, [busy], "busy")]
    huge = submit(project, "--gpus", "4", "true")
    table = cli(project, "status").stdout
    assert "unschedulable: needs 4 GPU(s); the largest live worker has 2" in table
    assert "draining" in cli(project, "drain", "box").stdout.lower()
    later = submit(project, "--gpus", "1", "true")
    flag.touch()
    assert worker.wait(timeout=20) == 0, worker_output(project)
    jobs = Jobs(store)
    assert jobs.get(busy).status == "completed"
    assert jobs.get(later).status == "queued" and jobs.get(huge).status == "queued"
    assert store.worker("box").stopped  # type: ignore[union-attr]
    assert "drained" in worker_output(project)


def test_hooks_fire_on_failure_and_stuck_runs(project: Project, store) -> None:
    hooks = project.root / "hooks.jsonl"
    configure(
        project,
        "notify:\n"
        f"  command: 'cat >> {hooks}; echo >> {hooks}'\n"
        "  events: [failed, stuck]\n"
        "  stuck_after: 0.5\n",
    )
    failing = submit(project, "sh", "-c", "exit 2")
    quiet = submit(project, "sleep", "1.5")
    ok = submit(project, "true")
    worker = start(project, "--exit-when-empty")
    assert worker.wait(timeout=30) == 0, worker_output(project)
    events = [json.loads(line) for line in hooks.read_text().splitlines() if line.strip()]
    got = sorted((e["event"], e["job_id"]) for e in events)
    assert got == sorted([("failed", failing), ("stuck", quiet)])
    assert all(e["job_id"] != ok for e in events)
    failed = next(e for e in events if e["event"] == "failed")
    assert failed["exit_code"] == 2 and failed["status"] == "failed"


def test_snapshot_runs_the_code_as_it_was_at_submit(project: Project, store) -> None:
    configure(project)
    repo = project.root / "repo"
    (repo / "src").mkdir(parents=True)
    script = repo / "src" / "train.sh"
    script.write_text("echo version-1\n")
    git = ["git", "-c", "user.email=t@e", "-c", "user.name=t"]
    subprocess.run([*git, "init", "-q"], cwd=repo, check=True)
    subprocess.run([*git, "add", "."], cwd=repo, check=True)
    subprocess.run([*git, "commit", "-qm", "v1"], cwd=repo, check=True)
    script.write_text("echo version-2-uncommitted\n")  # a modification is snapshotted too
    out = run_cli("submit", "--json", "--snapshot", "sh", "train.sh", cwd=repo / "src", check=True)
    job = json.loads(out.stdout)
    assert job["snapshot"] and job["workdir"].endswith(f"{job['snapshot']}/src")
    script.write_text("echo version-3-after-submit\n")
    again = json.loads(
        run_cli("submit", "--json", "--snapshot", "true", cwd=repo / "src", check=True).stdout
    )
    assert again["snapshot"] != job["snapshot"]
    worker = start(project, "--exit-when-empty")
    assert worker.wait(timeout=30) == 0, worker_output(project)
    log = Path(project.run_dir(job["run_id"])) / "output.log"
    assert log.read_text() == "version-2-uncommitted\n"
