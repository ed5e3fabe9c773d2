"""What a job used is recorded with its end (issue 17 item 3: "memory/CPU of the whole job
are accounted"), and a worker killed -9 leaves no cgroup behind for long: the next one to
start removes it. Real workers (the Python one, local and remote, and the Rust one) on a
cgroup2 hierarchy the tests mount (see ``containment_env``); without a cgroup nothing is
recorded and nothing breaks."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from containment_env import (  # noqa: F401 - fixtures
    cgroup2_mount_fixture,
    cgroup_dir_fixture,
    containment_fixture,
)
from server_process import WHIRR, ServerProcess, stop_process, wait_for
from worker_processes import spawn_rust_worker

from whirr.project import Project
from whirr.services import Jobs

#: 64 MiB, written (so resident), held while the job burns 0.6 s of CPU.
ALLOCATED = 64 * 2**20
BURN = (
    "import time\n"
    f"block = b'x' * {ALLOCATED}\n"
    "start = time.process_time()\n"
    "while time.process_time() - start < 0.6:\n"
    "    pass\n"
    "print(len(block))\n"
)
FINISHED = {"completed", "failed", "cancelled", "timed_out"}


def check_usage(usage: dict[str, object] | None, cgroup_dir: Path) -> None:
    """Plausible for ``BURN``: more than 0.2 s of CPU, split into user and system; a
    memory peak above the allocation where the memory controller is on, none elsewhere."""
    assert usage is not None
    cpu, user, system = usage["cpu_seconds"], usage["cpu_user_seconds"], usage["cpu_system_seconds"]
    assert isinstance(cpu, float) and isinstance(user, float) and isinstance(system, float)
    assert 0.2 < cpu < 60 and abs(user + system - cpu) < 0.05, usage
    if "memory" in (cgroup_dir / "cgroup.controllers").read_text().split():
        peak = usage["memory_peak_bytes"]
        assert isinstance(peak, int) and ALLOCATED < peak < 100 * ALLOCATED, usage
    else:
        assert usage.get("memory_peak_bytes") is None, usage


def cli(project: Project, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*WHIRR, *args], cwd=project.root, capture_output=True, text=True, timeout=60
    )


# -- the local Python worker: recorded, and shown by status and show --------------------
def test_a_local_workers_job_records_what_it_used(
    project: Project, store, containment: dict[str, str]
) -> None:
    job = Jobs(store).submit([sys.executable, "-c", BURN], str(project.root)).id
    worker = subprocess.run(
        [*WHIRR, "worker", "--exit-when-empty"],
        cwd=project.root,
        env={**os.environ, **containment},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert worker.returncode == 0, worker.stdout + worker.stderr
    view = Jobs(store).get(job)
    assert view.status == "completed"
    status = cli(project, "status", str(job))
    as_json = json.loads(cli(project, "status", str(job), "--json").stdout)
    shown = json.loads(cli(project, "show", f"job-{job}", "--json").stdout)
    if "WHIRR_CGROUP_DIR" not in containment:  # no cgroup: nothing accounted, nothing said
        assert view.usage is None and as_json["usage"] is None and shown["usage"] is None
        assert "Used:" not in status.stdout
        return
    usage = as_json["usage"]
    check_usage(usage, Path(containment["WHIRR_CGROUP_DIR"]))
    assert shown["usage"] == usage
    assert f"Used:      {usage['cpu_seconds']:.1f} s CPU (" in status.stdout, status.stdout
    assert f"{usage['cpu_seconds']:.1f} s CPU" in cli(project, "show", f"job-{job}").stdout


# -- remote workers: the end they report carries it -------------------------------------
@pytest.fixture
def server(tmp_path: Path) -> Iterator[ServerProcess]:
    srv = ServerProcess(tmp_path / "srv")
    yield srv
    srv.stop()


def submit(server: ServerProcess, tmp_path: Path) -> int:
    with server.http() as http:
        body = {"command_argv": [sys.executable, "-c", BURN], "workdir": str(tmp_path)}
        answer = http.post("/jobs", json=body)
        answer.raise_for_status()
        return int(answer.json()["job_id"])


def ended(server: ServerProcess, job_id: int, log: Path) -> dict[str, object]:
    def look() -> dict[str, object] | None:
        with server.http() as http:
            job = http.get(f"/jobs/{job_id}").json()
        return job if job["status"] in FINISHED else None

    try:
        return wait_for(look, timeout=60)
    except AssertionError:
        raise AssertionError(f"job {job_id} did not end:\n{log.read_text()}") from None


@pytest.mark.parametrize("kind", ["python", "rust"])
def test_a_remote_workers_job_records_what_it_used(
    server: ServerProcess, tmp_path: Path, cgroup_dir: Path, kind: str
) -> None:
    env = {"WHIRR_CONTAINMENT": "cgroup", "WHIRR_CGROUP_DIR": str(cgroup_dir)}
    job_id = submit(server, tmp_path)
    log = tmp_path / "worker.log"
    if kind == "python":
        with log.open("ab") as out:
            worker = subprocess.Popen(
                [*WHIRR, "worker", "--server", server.url, "--data-dir", str(server.data_dir)],
                env={**server.env, **env},
                stdout=out,
                stderr=subprocess.STDOUT,
            )
    else:
        worker = spawn_rust_worker(server, env, log)
    try:
        job = ended(server, job_id, log)
    finally:
        stop_process(worker)
    assert job["status"] == "completed", (job, log.read_text())
    check_usage(job["usage"], cgroup_dir)  # type: ignore[arg-type]


# -- cgroups a worker killed -9 left behind ---------------------------------------------
def reaper_of(worker: int) -> int | None:
    """The worker's reaper: its child running the worker's own command line (the Python
    worker forks it) or ``whirr-worker __whirr_reaper`` (the Rust one)."""
    own = Path(f"/proc/{worker}/cmdline").read_bytes()
    for name in filter(str.isdigit, os.listdir("/proc")):
        try:
            fields = Path(f"/proc/{name}/stat").read_text().rpartition(")")[2].split()
            cmdline = Path(f"/proc/{name}/cmdline").read_bytes()
        except OSError:
            continue
        if int(fields[1]) == worker and (cmdline == own or b"__whirr_reaper" in cmdline):
            return int(name)
    return None


def kill_9_with_its_reaper(worker: subprocess.Popen[bytes]) -> None:
    """SIGKILL the reaper first (else it would remove the cgroup), then the worker."""
    os.kill(wait_for(lambda: reaper_of(worker.pid), timeout=30), signal.SIGKILL)
    worker.kill()
    worker.wait(timeout=10)


@pytest.fixture
def holders() -> Iterator[list[subprocess.Popen[bytes]]]:
    """Processes standing in for a live worker and for a job left in a cgroup."""
    started: list[subprocess.Popen[bytes]] = []
    yield started
    for proc in started:
        proc.kill()
        proc.wait()


@pytest.mark.parametrize("kind", ["python", "rust"])
def test_a_starting_worker_removes_empty_cgroups_of_dead_workers(
    project: Project,
    tmp_path: Path,
    cgroup_dir: Path,
    holders: list[subprocess.Popen[bytes]],
    kind: str,
) -> None:
    """Worker A is killed -9 (its reaper too): its empty ``whirr-worker-<pid>`` stays.
    Worker B starts and removes it, but not the cgroup of a live worker (its pid is
    alive) nor that of a dead worker still holding a process."""
    env = {**os.environ, "WHIRR_CONTAINMENT": "cgroup", "WHIRR_CGROUP_DIR": str(cgroup_dir)}
    server = ServerProcess(tmp_path / "srv") if kind == "rust" else None

    def start() -> subprocess.Popen[bytes]:
        if server is None:
            log = (project.root / "worker.log").open("ab")
            with log:
                return subprocess.Popen(
                    [*WHIRR, "worker"], cwd=project.root, env=env, stdout=log, stderr=log
                )
        return spawn_rust_worker(server, env, tmp_path / "rust-worker.log")

    try:
        first = start()
        left = cgroup_dir / f"whirr-worker-{first.pid}"
        wait_for(left.is_dir, timeout=30)
        kill_9_with_its_reaper(first)
        assert left.is_dir()  # nobody removed it
        live = subprocess.Popen(["sleep", "300"])
        holders.append(live)
        of_live = cgroup_dir / f"whirr-worker-{live.pid}"
        of_live.mkdir()
        gone = subprocess.Popen(["true"])
        gone.wait()
        busy = cgroup_dir / f"whirr-worker-{gone.pid}" / "job-1-1"
        busy.mkdir(parents=True)
        job = subprocess.Popen(["sleep", "300"])
        holders.append(job)
        (busy / "cgroup.procs").write_text(str(job.pid))
        second = start()
        try:
            wait_for(lambda: (cgroup_dir / f"whirr-worker-{second.pid}").is_dir(), timeout=30)
            assert not left.exists()
            assert of_live.is_dir() and busy.is_dir()
        finally:
            stop_process(second)
        of_live.rmdir()
    finally:
        if server is not None:
            server.stop()
