"""A real ``whirr dashboard`` process for the dashboard's tests and benchmark."""

from __future__ import annotations

import os
import re
import subprocess
import time
from pathlib import Path

import httpx
from server_process import WHIRR, free_port, stop_process


class DashboardProcess:
    """``whirr dashboard`` run in ``cwd`` on a free loopback port (output to a log file)."""

    def __init__(
        self, cwd: Path, *args: str, env: dict[str, str] | None = None, port: int | None = None
    ) -> None:
        # A fixed port keeps the origin, so a browser's cache survives a restart.
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = cwd.parent / f"dashboard-{self.port}.log"
        environ = {
            k: v
            for k, v in os.environ.items()
            if k not in ("WHIRR_SERVER_URL", "WHIRR_DASHBOARD_TOKEN", "WHIRR_TOKEN")
        }
        environ.update(env or {})
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen(
                [*WHIRR, "dashboard", "-p", str(self.port), *args],
                cwd=cwd,
                env=environ,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        self._wait_ready()

    def _wait_ready(self) -> None:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError(f"whirr dashboard exited:\n{self.output()}")
            try:
                httpx.get(f"{self.url}/static/theme.js", timeout=1)
                return
            except httpx.TransportError:
                time.sleep(0.05)
        raise AssertionError(f"whirr dashboard did not come up:\n{self.output()}")

    def client(self) -> httpx.Client:
        """An HTTP client on the dashboard."""
        return httpx.Client(base_url=self.url, timeout=30)

    def csrf(self, client: httpx.Client, path: str = "/") -> str:
        """The CSRF token a page carries."""
        html = client.get(path).text
        found = re.search(r'name="csrf-token" content="([0-9a-f]+)"', html)
        assert found, html
        return found.group(1)

    def output(self) -> str:
        """What the dashboard printed."""
        return self.log_path.read_text(errors="replace")

    def stop(self) -> None:
        """SIGTERM, then SIGKILL if it lingers."""
        stop_process(self.proc)
