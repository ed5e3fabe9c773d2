"""End to end: the Rust ``whirr-worker`` binary drains jobs from a real ``whirr server``.

Builds (or reuses) ``worker-rust/target/release/whirr-worker``, starts ``whirr server`` on
a free loopback port with a token, submits jobs over HTTP and checks what users rely on:
jobs complete with their exit codes and output, a cancel ends a running job ``cancelled``
with its whole process tree gone, and ``kill -9`` of the worker leaves no job process.

A missing binary (and no cargo to build it) or a server that does not start is a
failure, never a skip: CI must not pass without exercising the worker.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import pytest
from server_process import rust_worker_binary

TOKEN = "e2e-test-token"
FINISHED = ("completed", "failed", "cancelled", "timed_out")

T = TypeVar("T")

pytestmark = pytest.mark.skipif(sys.platform != "linux", reason="the worker is Linux-only")


def wait_for(probe: Callable[[], T | None], timeout: float, what: str) -> T:
    """Poll ``probe`` until it returns something truthy; fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = probe()
        if value:
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout}s waiting for {what}")
        time.sleep(0.05)


@pytest.fixture(scope="session")
def worker_binary() -> Path:
    return rust_worker_binary()


def free_port() -> int:
    """A TCP port nothing listens on right now (loopback)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Server:
    """A ``whirr server`` subprocess and a tiny JSON-over-HTTP client for it."""

    def __init__(self, data_dir: Path) -> None:
        self.data_dir = data_dir
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        env = {**os.environ, "WHIRR_TOKEN": TOKEN}
        env.pop("WHIRR_DATABASE_URL", None)
        self.log_path = data_dir.parent / "server.log"
        self._log = self.log_path.open("wb")
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "whirr.cli.main",
                "server",
                "-p",
                str(self.port),
                "--host",
                "127.0.0.1",
                "-d",
                str(data_dir),
            ],
            env=env,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )

    def wait_ready(self, timeout: float = 60) -> None:
        def healthy() -> bool:
            if self.proc.poll() is not None:
                pytest.fail(f"whirr server exited ({self.proc.returncode}):\n{self.output()}")
            try:
                return bool(self.request("GET", "/health", auth=False)["status"] == "healthy")
            except (OSError, urllib.error.URLError):
                return False

        wait_for(healthy, timeout, "whirr server to answer /api/v1/health")

    def output(self) -> str:
        return self.log_path.read_text(errors="replace")

    def request(self, method: str, path: str, body: Any = None, *, auth: bool = True) -> Any:
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(f"{self.url}/api/v1{path}", data=data, method=method)
        req.add_header("Content-Type", "application/json")
        if auth:
            req.add_header("Authorization", f"Bearer {TOKEN}")
        with urllib.request.urlopen(req, timeout=30) as resp:
            return json.loads(resp.read())

    def submit(self, argv: list[str], workdir: Path, **extra: Any) -> int:
        answer = self.request(
            "POST", "/jobs", {"command_argv": argv, "workdir": str(workdir), **extra}
        )
        return int(answer["job_id"])

    def job(self, job_id: int) -> dict[str, Any]:
        return dict(self.request("GET", f"/jobs/{job_id}"))

    def wait_finished(
        self, job_id: int, timeout: float = 30, worker: Worker | None = None
    ) -> dict[str, Any]:
        def finished() -> dict[str, Any] | None:
            job = self.job(job_id)
            return job if job["status"] in FINISHED else None

        try:
            return wait_for(finished, timeout, f"job {job_id} to finish")
        except pytest.fail.Exception:
            logs = f"\nworker log:\n{worker.output()}" if worker else ""
            pytest.fail(f"job {job_id} did not finish in {timeout}s: {self.job(job_id)}{logs}")

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._log.close()


@pytest.fixture
def server(tmp_path: Path) -> Iterator[Server]:
    srv = Server(tmp_path / "server-data")
    try:
        srv.wait_ready()
        yield srv
    finally:
        srv.stop()


class Worker:
    """A running ``whirr-worker`` process."""

    def __init__(self, binary: Path, server: Server, *extra: str, token: str = TOKEN) -> None:
        env = {**os.environ, "WHIRR_TOKEN": token}
        self.stderr_path = server.data_dir.parent / f"worker-{time.monotonic_ns()}.log"
        self._stderr = self.stderr_path.open("wb")
        self.proc = subprocess.Popen(
            [
                str(binary),
                "-s",
                server.url,
                "-d",
                str(server.data_dir),
                "--poll-interval",
                "0.5",
                "--heartbeat-interval",
                "0.5",
                "--lease-seconds",
                "10",
                "--kill-grace",
                "2",
                *extra,
            ],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=self._stderr,
            stdin=subprocess.DEVNULL,
        )

    def output(self) -> str:
        return self.stderr_path.read_text(errors="replace")

    def close(self) -> None:
        """Kill if still running (test teardown) and release the log file."""
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait()
        self._stderr.close()

    def stop(self, timeout: float = 20) -> int:
        """SIGINT (drain) and wait; SIGKILL if it does not exit in time."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
        try:
            code = self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            pytest.fail(f"whirr-worker did not drain within {timeout}s:\n{self.output()}")
        return code


@pytest.fixture
def start_worker(worker_binary: Path, server: Server) -> Iterator[Callable[..., Worker]]:
    workers: list[Worker] = []

    def start(*extra: str, token: str = TOKEN) -> Worker:
        worker = Worker(worker_binary, server, *extra, token=token)
        workers.append(worker)
        return worker

    yield start
    for worker in workers:
        worker.close()


def job_pids(run_dir: Path) -> list[int]:
    """Live (non-zombie) processes whose environment names ``run_dir`` as WHIRR_RUN_DIR."""
    marker = f"WHIRR_RUN_DIR={run_dir}".encode()
    pids = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            environ = (entry / "environ").read_bytes()
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        state = stat.rsplit(")", 1)[-1].split()[0] if ")" in stat else "?"
        if marker in environ.split(b"\0") and state not in ("Z", "X"):
            pids.append(int(entry.name))
    return pids


def test_worker_drains_jobs_with_exit_codes_output_and_env(
    server: Server, start_worker: Callable[..., Worker], tmp_path: Path
) -> None:
    workdir = tmp_path / "wd"
    workdir.mkdir()
    script = (
        "echo job=$WHIRR_JOB_ID run=$WHIRR_RUN_ID dir=$WHIRR_RUN_DIR "
        "unbuffered=$PYTHONUNBUFFERED extra=$EXTRA gpu=$CUDA_VISIBLE_DEVICES; pwd; "
        "echo to-stderr >&2; exit $CODE"
    )
    ids = [
        (
            code,
            server.submit(
                ["sh", "-c", script],
                workdir,
                name=f"exit-{code}",
                env={"CODE": str(code), "EXTRA": "x"},
            ),
        )
        for code in (0, 3, 0, 7)
    ]
    worker = start_worker("--gpu", "1")
    for code, job_id in ids:
        job = server.wait_finished(job_id, worker=worker)
        assert job["exit_code"] == code, worker.output()
        assert job["status"] == ("completed" if code == 0 else "failed")
        run_dir = server.data_dir.resolve() / "runs" / job["run_id"]
        log = (run_dir / "output.log").read_text()
        assert f"job={job_id} run={job['run_id']} dir={run_dir}" in log
        assert "unbuffered=1 extra=x gpu=1" in log
        assert str(workdir) in log
        assert "to-stderr" in log
    workers = server.request("GET", "/workers")["workers"]
    assert any(w["gpu_id"] == 1 or 1 in w.get("gpu_ids", []) for w in workers), workers
    assert worker.stop() == 0


def test_unstartable_jobs_fail_with_a_clear_error(
    server: Server, start_worker: Callable[..., Worker], tmp_path: Path
) -> None:
    missing_exe = server.submit(["whirr-no-such-program"], tmp_path)
    missing_dir = server.submit(["true"], tmp_path / "no-such-dir")
    after = server.submit(["true"], tmp_path)
    worker = start_worker()
    exe_job = server.wait_finished(missing_exe)
    dir_job = server.wait_finished(missing_dir)
    assert exe_job["status"] == "failed"
    assert "executable not found" in (exe_job.get("error") or ""), exe_job
    assert dir_job["status"] == "failed"
    assert "working directory does not exist" in (dir_job.get("error") or ""), dir_job
    # The worker survives and keeps going.
    assert server.wait_finished(after)["status"] == "completed"
    assert worker.stop() == 0


def test_cancel_of_a_running_job_ends_it_cancelled_with_its_tree_gone(
    server: Server, start_worker: Callable[..., Worker], tmp_path: Path
) -> None:
    job_id = server.submit(["sh", "-c", "sleep 300 & sleep 300 & wait"], tmp_path)
    worker = start_worker()
    run_dir = (server.data_dir / "runs" / f"job-{job_id}").resolve()
    pids = wait_for(
        lambda: len(job_pids(run_dir)) >= 3 and job_pids(run_dir), 30, "the job's three processes"
    )
    assert server.job(job_id)["status"] == "running"
    server.request("POST", f"/jobs/{job_id}/cancel")
    job = server.wait_finished(job_id, timeout=15, worker=worker)
    assert job["status"] == "cancelled", (job, worker.output())
    assert job["exit_code"] == -signal.SIGTERM
    wait_for(lambda: not job_pids(run_dir), 5, f"processes {pids} to be gone")
    assert worker.stop() == 0


def test_kill_9_of_the_worker_leaves_no_job_process(
    server: Server, start_worker: Callable[..., Worker], tmp_path: Path
) -> None:
    # The leader dies by PDEATHSIG; the grandchild ignores SIGTERM and only the worker's
    # reaper process can end it.
    job_id = server.submit(["sh", "-c", "trap '' TERM; sleep 300 & wait"], tmp_path)
    worker = start_worker()
    run_dir = (server.data_dir / "runs" / f"job-{job_id}").resolve()
    wait_for(lambda: len(job_pids(run_dir)) >= 2, 30, "the job's processes")
    worker.proc.kill()
    worker.proc.wait()
    wait_for(lambda: not job_pids(run_dir), 5, "the job's processes to die with the worker")


def test_second_sigint_ends_the_running_job_and_reports_it(
    server: Server, start_worker: Callable[..., Worker], tmp_path: Path
) -> None:
    job_id = server.submit(["sleep", "300"], tmp_path)
    worker = start_worker()
    run_dir = (server.data_dir / "runs" / f"job-{job_id}").resolve()
    wait_for(lambda: job_pids(run_dir), 30, "the job to start")
    worker.proc.send_signal(signal.SIGINT)
    # Counted before the next one: two signals close together may arrive as one.
    wait_for(lambda: "draining" in worker.output(), 30, "the worker to say it drains")
    assert job_pids(run_dir), "the first SIGINT must let the job finish (drain)"
    assert server.job(job_id)["status"] == "running"
    worker.proc.send_signal(signal.SIGINT)
    job = server.wait_finished(job_id, timeout=15)
    # An operator's stop: cancelled, with the reason, and never retried.
    assert (job["status"], job["error"]) == ("cancelled", "worker interrupted")
    assert job["exit_code"] == -signal.SIGTERM
    assert not job_pids(run_dir)
    # It exits by itself (another signal now could find it idle: 128 + SIGINT).
    assert worker.proc.wait(timeout=20) == 0, worker.output()


def test_wrong_token_is_a_clear_error(server: Server, start_worker: Callable[..., Worker]) -> None:
    worker = start_worker(token="not-the-token")
    code = worker.proc.wait(timeout=30)
    assert code == 1
    assert "Error: cannot register worker" in worker.output()


def test_the_job_computes_on_the_gpu_it_was_given_on_a_mixed_box(
    server: Server, start_worker: Callable[..., Worker], tmp_path: Path
) -> None:
    """``--gpu 0`` is NVML's GPU 0 (PCI bus order): the fake NVML's mixed box has a T4
    there and an A100 after it, which CUDA would number first (fastest first) unless the
    worker sets ``CUDA_DEVICE_ORDER=PCI_BUS_ID``. ``fakes.fake_cuda`` applies CUDA's rule;
    a job's own explicit order is kept."""
    tests = Path(__file__).resolve().parents[1]
    env = {"FAKE_NVML_BOX": "mixed", "PYTHONPATH": str(tests)}
    record = (
        f"{sys.executable} -m fakes.fake_cuda > cuda-$WHIRR_JOB_ID; "
        'echo "$CUDA_DEVICE_ORDER" > order-$WHIRR_JOB_ID'
    )
    given = server.submit(["sh", "-c", record], tmp_path, env=env)
    own = server.submit(
        ["sh", "-c", record], tmp_path, env={**env, "CUDA_DEVICE_ORDER": "FASTEST_FIRST"}
    )
    worker = start_worker("--gpu", "0")
    for job_id in (given, own):
        assert server.wait_finished(job_id, worker=worker)["status"] == "completed"
    assert (tmp_path / f"cuda-{given}").read_text().strip() == "GPU-fake-t4"
    assert (tmp_path / f"order-{given}").read_text().strip() == "PCI_BUS_ID"
    assert (tmp_path / f"order-{own}").read_text().strip() == "FASTEST_FIRST"
