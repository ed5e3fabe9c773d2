"""A long-running command of an installed whirr (``whirr server``, ``whirr dashboard``),
started in the background and stopped as Ctrl-C would, with its output kept for asserts."""

from __future__ import annotations

import signal
import subprocess
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

import httpx
from server_process import wait_for


class Serving:
    """A started process answering HTTP at ``url``."""

    def __init__(self, process: subprocess.Popen[bytes], url: str, log: Path) -> None:
        self.process = process
        self.url = url
        self.log = log

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def get(self, path: str, **kwargs: object) -> httpx.Response:
        return httpx.get(self.url + path, timeout=30, **kwargs)  # type: ignore[arg-type]


@contextmanager
def serving(
    argv: Sequence[str | Path],
    url: str,
    log: Path,
    env: dict[str, str],
    cwd: Path | None = None,
    ready: str = "/api/v1/health",
) -> Iterator[Serving]:
    """Run ``argv`` until ``url + ready`` answers (30 s at most; the process dying first
    fails at once, with its output), yield it, then stop it with SIGINT."""
    with log.open("wb") as sink:
        process = subprocess.Popen(
            [str(part) for part in argv], cwd=cwd, env=env, stdout=sink, stderr=subprocess.STDOUT
        )
    served = Serving(process, url, log)
    try:

        def answers() -> bool:
            if process.poll() is not None:
                raise AssertionError(f"{argv} exited {process.returncode}:\n{served.output()}")
            try:
                return httpx.get(url + ready, timeout=2).status_code < 500
            except httpx.TransportError:
                return False

        wait_for(answers, timeout=30, interval=0.05)
        yield served
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGINT)
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=15)
