"""Real ``whirr server`` and remote ``whirr worker`` processes for the API and e2e tests."""

from __future__ import annotations

import functools
import http.client
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import httpx

WHIRR = [sys.executable, "-m", "whirr.cli.main"]
T = TypeVar("T")


def free_port() -> int:
    """A TCP port free on loopback right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_for(predicate: Callable[[], T], timeout: float = 30.0, interval: float = 0.02) -> T:
    """Poll ``predicate`` until it returns something truthy."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"condition not met within {timeout}s")


def alive(pid: int) -> bool:
    """True while ``pid`` runs (a zombie counts as dead)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().split(") ")[1][0] != "Z"
    except FileNotFoundError:
        return False


class ServerProcess:
    """``whirr server`` on a free loopback port over ``<root>/data``; the output of it and
    its workers goes to ``<root>/logs`` (not the data dir, whose changes wake the store)."""

    def __init__(
        self,
        root: Path,
        *,
        token: str | None = "test-token",
        database_url: str | None = None,
        args: tuple[str, ...] = (),
        port: int | None = None,
    ) -> None:
        self.root = root
        self.data_dir = data_dir = root / "data"
        self.logs_dir = root / "logs"
        self.token = token
        self.port = port or free_port()  # a given port: a restart where workers expect it
        self.url = f"http://127.0.0.1:{self.port}"
        data_dir.mkdir(parents=True, exist_ok=True)
        self.logs_dir.mkdir(parents=True, exist_ok=True)
        self.log_path = self.logs_dir / "server.log"
        env = {
            k: v
            for k, v in os.environ.items()
            if k not in ("WHIRR_TOKEN", "WHIRR_DATABASE_URL", "WHIRR_PUBLIC_URL")
        }
        cmd = [
            *WHIRR,
            "server",
            "-p",
            str(self.port),
            "-d",
            str(data_dir),
            "--requeue-interval",
            "0.5",
            *args,
        ]
        if token is None:
            cmd.append("--no-auth")
        else:
            cmd += ["--token", token]
        if database_url:
            cmd += ["--database-url", database_url]
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen(cmd, env=env, stdout=log, stderr=subprocess.STDOUT)
        try:
            self._wait_ready()
        except BaseException:  # never leave a server behind a failed start
            self.proc.kill()
            self.proc.wait()
            raise

    def _wait_ready(self) -> None:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError(f"whirr server exited:\n{self.output()}")
            try:
                if httpx.get(f"{self.url}/api/v1/health", timeout=1).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.05)
        raise AssertionError(f"whirr server did not come up:\n{self.output()}")

    @property
    def env(self) -> dict[str, str]:
        """Environment for CLI and worker processes talking to this server."""
        env = {**os.environ, "WHIRR_SERVER_URL": self.url}
        if self.token:
            env["WHIRR_TOKEN"] = self.token
        else:
            env.pop("WHIRR_TOKEN", None)
        return env

    def headers(self) -> dict[str, str]:
        """The auth header."""
        return {"Authorization": f"Bearer {self.token}"} if self.token else {}

    def http(self) -> httpx.Client:
        """An httpx client on ``/api/v1`` with the token."""
        return httpx.Client(base_url=f"{self.url}/api/v1", headers=self.headers(), timeout=30)

    def raw(
        self,
        method: str,
        path: str,
        body: bytes | None = None,
        headers: dict[str, str] | None = None,
    ) -> tuple[int, bytes]:
        """Send ``path`` exactly as given (no client-side normalisation of ``..``)."""
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        try:
            conn.request(method, path, body=body, headers={**self.headers(), **(headers or {})})
            resp = conn.getresponse()
            return resp.status, resp.read()
        finally:
            conn.close()

    def output(self) -> str:
        """What the server printed."""
        return self.log_path.read_text(errors="replace")

    def stop(self) -> None:
        """SIGTERM, then SIGKILL if it lingers."""
        stop_process(self.proc)


def stop_process(proc: subprocess.Popen[bytes]) -> None:
    """SIGTERM ``proc``, then SIGKILL it if it lingers past 10 s."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def start_remote_worker(server: ServerProcess, *args: str, **popen: Any) -> subprocess.Popen[bytes]:
    """A real ``whirr worker --server`` process on the server's data dir; its output goes
    to ``<root>/logs/worker-<n>.log``."""
    n = len(list(server.logs_dir.glob("worker-*.log")))
    with open(server.logs_dir / f"worker-{n}.log", "wb") as log:
        return subprocess.Popen(
            [*WHIRR, "worker", "--server", server.url, "--data-dir", str(server.data_dir), *args],
            env=server.env,
            stdout=log,
            stderr=subprocess.STDOUT,
            **popen,
        )


def worker_output(server: ServerProcess) -> str:
    """Everything the remote workers printed."""
    logs = sorted(server.logs_dir.glob("worker-*.log"))
    return "\n".join(p.read_text(errors="replace") for p in logs)


def run_cli(
    *args: str, server: ServerProcess, cwd: Path, timeout: float = 60
) -> subprocess.CompletedProcess[str]:
    """The real CLI against ``server`` (WHIRR_SERVER_URL and WHIRR_TOKEN set)."""
    return subprocess.run(
        [*WHIRR, *args], cwd=cwd, env=server.env, capture_output=True, text=True, timeout=timeout
    )


RUST_CRATE = Path(__file__).resolve().parents[1] / "worker-rust"


@functools.cache
def rust_worker_binary() -> Path:
    """The release ``whirr-worker``, built (incrementally, once per test session) when
    cargo is available; a test fails when it can be neither built nor found."""
    import pytest

    binary = RUST_CRATE / "target" / "release" / "whirr-worker"
    cargo = shutil.which("cargo")
    if cargo:
        build = subprocess.run(
            [cargo, "build", "--release", "--quiet"],
            cwd=RUST_CRATE,
            capture_output=True,
            text=True,
            timeout=900,
        )
        if build.returncode != 0:
            pytest.fail(f"cargo build --release failed:\n{build.stderr}")
    if not binary.is_file():
        pytest.fail(f"{binary} is missing and cargo is not on PATH to build it")
    return binary
