"""``whirr watch`` in a real pseudo-terminal (as over SSH): it draws, follows keys and
events, and `q` quits cleanly, restoring the terminal."""

from __future__ import annotations

import os
import select
import subprocess
import sys
import time
from typing import Any

from whirr.project import Project
from whirr.services import Jobs


def read_until(fd: int, needle: bytes, seen: bytearray, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while needle not in seen:
        left = deadline - time.monotonic()
        assert left > 0, f"{needle!r} never appeared; got {bytes(seen[-400:])!r}"
        if select.select([fd], [], [], min(left, 0.2))[0]:
            try:
                seen += os.read(fd, 65536)
            except OSError:  # the child closed the terminal
                break


def test_watch_runs_in_a_terminal_follows_events_and_quits_on_q(
    project: Project, store: Any
) -> None:
    Jobs(store).submit(["python", "a.py"], str(project.root), name="alpha", check=False)
    leader, follower = os.openpty()
    env = {**os.environ, "TERM": "xterm-256color", "COLUMNS": "100", "LINES": "40"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "whirr.cli.main", "watch", "-i", "30"],
        cwd=project.root,
        stdin=follower,
        stdout=follower,
        stderr=follower,
        env=env,
        start_new_session=True,
    )
    os.close(follower)
    seen = bytearray()
    try:
        read_until(leader, b"alpha", seen)
        # A new event shows up without waiting for the 30 s interval.
        Jobs(store).submit(["python", "b.py"], str(project.root), name="bravo", check=False)
        read_until(leader, b"bravo", seen)
        os.write(leader, b"j")  # select the next job
        read_until(leader, b"Job #2 bravo", seen)
        os.write(leader, b"q")
        read_until(leader, b"\x1b[?1049l", seen)  # it leaves the alternate screen
        assert proc.wait(timeout=20) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        os.close(leader)
    assert b"Traceback" not in seen
    assert b"\x1b[?1049h" in seen  # it drew on the alternate screen
