"""``whirr watch`` in a real pseudo-terminal (as over SSH): it draws, follows keys and
events, and `q` quits cleanly, restoring the terminal."""

from __future__ import annotations

import fcntl
import os
import select
import struct
import subprocess
import sys
import termios
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pyte

from whirr.project import Project
from whirr.services import Jobs, Workers


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


class Terminal:
    """A real ``whirr watch`` on a pseudo-terminal of a given size, its output kept as the
    screen a terminal would show (pyte, a VT100 emulator)."""

    def __init__(self, cwd: Path, columns: int, lines: int) -> None:
        self.screen = pyte.Screen(columns, lines)
        self.stream = pyte.ByteStream(self.screen)
        self.raw = bytearray()
        self.leader, follower = os.openpty()
        fcntl.ioctl(follower, termios.TIOCSWINSZ, struct.pack("HHHH", lines, columns, 0, 0))
        env = {
            **os.environ,
            "TERM": "xterm-256color",
            "COLUMNS": str(columns),
            "LINES": str(lines),
        }
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "whirr.cli.main", "watch", "-i", "30"],
            cwd=cwd,
            stdin=follower,
            stdout=follower,
            stderr=follower,
            env=env,
            start_new_session=True,
        )
        os.close(follower)

    def rows(self) -> list[str]:
        return [row.rstrip() for row in self.screen.display]

    def wait_for(self, shows: Callable[[list[str]], bool], timeout: float = 20.0) -> list[str]:
        """Read on until the screen ``shows`` what is wanted; the screen then."""
        deadline = time.monotonic() + timeout
        while not shows(self.rows()):
            left = deadline - time.monotonic()
            assert left > 0, "the screen never showed it:\n" + "\n".join(self.rows())
            if select.select([self.leader], [], [], min(left, 0.2))[0]:
                try:
                    data = os.read(self.leader, 65536)
                except OSError:  # the child closed the terminal
                    break
                self.raw += data
                self.stream.feed(data)
        return self.rows()

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        os.close(self.leader)


def test_at_80x24_everything_is_on_screen_and_j_scrolls_past_row_13(
    project: Project, store: Any
) -> None:
    jobs, workers = Jobs(store), Workers(store)
    for n in range(20):
        jobs.submit(["python", "t.py", str(n)], str(project.root), name=f"old-{n}", check=False)
    jobs.cancel_all_queued()  # 20 finished jobs: more than the 10 listed at first
    for n in range(5):
        jobs.submit(["python", "t.py", str(n)], str(project.root), name=f"new-{n}", check=False)
    for n in range(4):  # stopped workers are counted on the workers' line, never listed
        workers.register(f"gone-{n}", "box")
        workers.stopped(f"gone-{n}")
    workers.register("gpu-node-17.research.example.org-9001", "gpu-node-17.research.example.org")
    term = Terminal(project.root, 80, 24)
    try:
        rows = term.wait_for(lambda rows: rows[-1].startswith("q quit"))
        # Header, jobs, workers on one line, the job panel closed, the key help last.
        assert rows[0].startswith("whirr watch  project ")
        assert rows[1] == "Jobs  5 queued · 20 cancelled"  # all 15 listed fit
        assert next(r for r in rows if r.startswith("▶")).split()[:2] == ["▶", "21"]
        workers_line = next(r for r in rows if r.startswith("Workers "))
        assert "4 stopped" in workers_line and "gpu-node-17-9001" in workers_line
        assert "gone-" not in "\n".join(rows)
        assert any(r.startswith("╭─ Job #21 new-0 · queued") for r in rows)
        assert any(r.startswith("╰") for r in rows)

        # Down 16 rows: past the 15 jobs first listed (5 queued, 10 finished), the list
        # scrolls and lists older finished jobs; the 17th is job #9.
        os.write(term.leader, b"j" * 16)
        rows = term.wait_for(lambda rows: any(r.startswith("╭─ Job #9 ") for r in rows))
        assert next(r for r in rows if r.startswith("▶")).split()[:3] == ["▶", "9", "old-8"]
        assert rows[1].startswith("Jobs 3-17/25 ")  # scrolled by as little as it takes
        assert rows[-1].startswith("q quit")

        os.write(term.leader, b"g")  # back to the first row
        rows = term.wait_for(lambda rows: any(r.startswith("╭─ Job #21 ") for r in rows))
        assert next(r for r in rows if r.startswith("▶")).split()[:2] == ["▶", "21"]

        os.write(term.leader, b"q")
        assert term.proc.wait(timeout=20) == 0
    finally:
        term.close()
    assert b"Traceback" not in term.raw
