"""No process outlives its job, with the Rust ``whirr-worker`` (issue 17 item 3): the
leftover repros of tests/integration/test_containment.py against a real server, in both
containments (a cgroup v2 per job on a hierarchy the tests mount; the process group +
marker + subreaper fallback). Each job writes its marker first; afterwards no process
carrying it may remain."""

from __future__ import annotations

import os
import signal
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from containment_env import (  # noqa: F401 - fixtures
    PRINTS_LIMITS,
    assert_limits_printed,
    cgroup2_mount_fixture,
    cgroup_dir_fixture,
    containment_fixture,
    limits_env,
    marked,
    none_left,
    read_token,
)
from server_process import ServerProcess, wait_for
from worker_processes import spawn_rust_worker

FINISHED = {"completed", "failed", "cancelled", "timed_out"}


@pytest.fixture
def server(tmp_path: Path) -> Iterator[ServerProcess]:
    srv = ServerProcess(tmp_path / "srv")
    yield srv
    srv.stop()


class RustWorker:
    def __init__(
        self, server: ServerProcess, env: dict[str, str], *, session: bool = False
    ) -> None:
        self.log_path = server.logs_dir / f"rust-worker-{len(list(server.logs_dir.iterdir()))}.log"
        self.proc = spawn_rust_worker(server, env, self.log_path, new_session=session)

    def output(self) -> str:
        return self.log_path.read_text(errors="replace")

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


@pytest.fixture
def workers() -> Iterator[list[RustWorker]]:
    started: list[RustWorker] = []
    yield started
    for worker in started:
        worker.close()


def submit(server: ServerProcess, tmp_path: Path, script: str, **extra: object) -> int:
    line = f'echo "$WHIRR_JOB_TOKEN" > {tmp_path / "token"}; {script}'
    with server.http() as http:
        answer = http.post(
            "/jobs", json={"command_argv": ["bash", "-c", line], "workdir": str(tmp_path), **extra}
        )
        answer.raise_for_status()
        return int(answer.json()["job_id"])


def status(server: ServerProcess, job_id: int) -> str:
    with server.http() as http:
        return str(http.get(f"/jobs/{job_id}").json()["status"])


def finished(server: ServerProcess, job_id: int, worker: RustWorker) -> str:
    try:
        return wait_for(lambda: (s := status(server, job_id)) in FINISHED and s, timeout=30)
    except AssertionError:
        raise AssertionError(f"job {job_id} did not finish:\n{worker.output()}") from None


def test_rust_worker_says_which_containment_it_uses(
    server: ServerProcess, workers: list[RustWorker], containment: dict[str, str]
) -> None:
    worker = RustWorker(server, containment)
    workers.append(worker)
    expected = {"cgroup": "containment: cgroup v2 in ", "pgroup": "containment: process group"}
    wait_for(lambda: expected[containment["WHIRR_CONTAINMENT"]] in worker.output(), timeout=30)


@pytest.mark.parametrize(
    "script",
    ["sleep 304 & exit 0", "setsid sleep 305 & setsid -f sleep 306; exit 0"],
    ids=["background-child", "setsid-children"],
)
def test_rust_job_leftovers_die_when_it_exits(
    server: ServerProcess,
    workers: list[RustWorker],
    containment: dict[str, str],
    tmp_path: Path,
    script: str,
) -> None:
    job = submit(server, tmp_path, script)
    worker = RustWorker(server, containment)
    workers.append(worker)
    assert finished(server, job, worker) == "completed"
    none_left(read_token(tmp_path / "token"))


def test_rust_term_ignoring_child_dies_on_cancel(
    server: ServerProcess, workers: list[RustWorker], containment: dict[str, str], tmp_path: Path
) -> None:
    job = submit(server, tmp_path, '(trap "" TERM; exec sleep 303) & setsid sleep 307 & wait')
    worker = RustWorker(server, containment)
    workers.append(worker)
    token = read_token(tmp_path / "token")
    wait_for(lambda: len(marked(token)) >= 3)
    with server.http() as http:
        http.post(f"/jobs/{job}/cancel").raise_for_status()
    assert finished(server, job, worker) == "cancelled"
    none_left(token)


def test_rust_term_ignoring_child_dies_on_timeout(
    server: ServerProcess, workers: list[RustWorker], containment: dict[str, str], tmp_path: Path
) -> None:
    job = submit(
        server,
        tmp_path,
        '(trap "" TERM; exec sleep 303) & setsid sleep 308 & wait',
        timeout_seconds=1,
    )
    worker = RustWorker(server, containment)
    workers.append(worker)
    assert finished(server, job, worker) == "timed_out"
    none_left(read_token(tmp_path / "token"))


@pytest.mark.parametrize("sig", [signal.SIGHUP, signal.SIGKILL], ids=["SIGHUP", "SIGKILL"])
def test_rust_worker_process_group_signal_leaves_no_job_process(
    server: ServerProcess,
    workers: list[RustWorker],
    containment: dict[str, str],
    tmp_path: Path,
    sig: signal.Signals,
) -> None:
    """`setsid whirr-worker & kill -HUP -- -$!`: the reaper, in its own session, ends
    every process of the job."""
    submit(server, tmp_path, "sleep 311 & setsid sleep 312 & wait")
    worker = RustWorker(server, containment, session=True)
    workers.append(worker)
    token = read_token(tmp_path / "token")
    wait_for(lambda: len(marked(token)) >= 3)
    os.killpg(worker.proc.pid, sig)
    worker.proc.wait(timeout=10)
    none_left(token)


def test_rust_worker_refuses_cgroup_containment_it_cannot_have(
    server: ServerProcess, tmp_path: Path
) -> None:
    env = {"WHIRR_CONTAINMENT": "cgroup", "WHIRR_CGROUP_DIR": str(tmp_path)}
    worker = RustWorker(server, env)
    assert worker.proc.wait(timeout=30) == 1
    assert "Error: cannot contain jobs in a cgroup v2: " in worker.output()
    assert "is not a cgroup v2 directory" in worker.output()


def test_rust_job_limits_reach_its_cgroup_or_its_log_says_why_not(
    server: ServerProcess, workers: list[RustWorker], containment: dict[str, str], tmp_path: Path
) -> None:
    """`memory_bytes`/`cpus`: memory.max/cpu.max where the controllers are enabled; else
    the job runs unlimited and its log's first line says so."""
    job = submit(server, tmp_path, PRINTS_LIMITS, memory_bytes=16 * 2**30, cpus=4)
    worker = RustWorker(server, limits_env(containment))
    workers.append(worker)
    assert finished(server, job, worker) == "completed"
    log = (server.data_dir / "runs" / f"job-{job}" / "output.log").read_text().splitlines()
    assert_limits_printed(log, containment)
