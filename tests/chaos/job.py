"""The chaos suite's job: a small process tree that says when each of its processes lived.

Run by a worker as ``python job.py MARKS FIRST THEN``. It appends lines to the marks file
``MARKS``, one ``write`` each (``O_APPEND``, so lines from many processes never mix)::

    <kind> <job> <attempt> <pid> <role> <monotonic seconds> [<exit code>]

``kind`` is ``start`` (first thing a process does), ``tick`` (every ``TICK`` seconds while
it lives) or ``end`` (as it exits on its own or on SIGTERM; a SIGKILL leaves none, which
is why the ticks are there: the last line of a process bounds when it was last alive).
CLOCK_MONOTONIC is one clock for every process of the machine, so lines compare across
processes.

The leader numbers its attempt itself: under an exclusive lock on ``MARKS.lock`` it counts
the ``start`` lines its job's leaders wrote before it (the server's attempt number is not
in a job's environment). Attempt 1 runs ``FIRST`` seconds, later attempts ``THEN``, so a
test can keep a first attempt busy through a fault and still finish quickly afterwards.

The leader starts two children that tick for as long as it runs: one in its process
group, one in a session of its own (``setsid``), which only a containment that follows
every descendant (a cgroup, a subreaper) can stop. On SIGTERM the leader and its group
child write ``end`` and exit at once; nobody tells the setsid child. The leader waits for
both children before its ``end 0``.

Every process carries ``CHAOS_MARKER`` in its environment (the worker's and the job's env
set it): the suite finds leftovers by it in ``/proc/*/environ``. Standard library only,
so a process starts in a few tens of milliseconds.
"""

from __future__ import annotations

import fcntl
import os
import signal
import subprocess
import sys
import time

#: Seconds between two ticks of one process.
TICK = 0.2


class Marks:
    """Appends this process's lines to the marks file."""

    def __init__(self, path: str, job: str, attempt: int, role: str) -> None:
        self.path, self.job, self.attempt, self.role = path, job, attempt, role

    def write(self, kind: str, *extra: object) -> None:
        fields = [kind, self.job, str(self.attempt), str(os.getpid()), self.role]
        fields.append(f"{time.monotonic():.6f}")
        fields.extend(str(x) for x in extra)
        line = (" ".join(fields) + "\n").encode()
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            os.write(fd, line)
        finally:
            os.close(fd)


def claim_attempt(path: str, job: str) -> int:
    """This leader's attempt: one more than the leaders of ``job`` that started before it,
    counted and recorded under one lock so two attempts cannot take the same number."""
    with open(path + ".lock", "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            seen = 0
            try:
                with open(path) as fh:
                    for line in fh:
                        parts = line.split()
                        if parts[:2] == ["start", job] and parts[4:5] == ["leader"]:
                            seen += 1
            except FileNotFoundError:
                pass
            Marks(path, job, seen + 1, "leader").write("start")
            return seen + 1
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def tick_until(marks: Marks, deadline: float, stop: list[bool]) -> None:
    """Tick until ``deadline`` (monotonic) or until ``stop[0]`` is set by a handler."""
    while not stop[0] and time.monotonic() < deadline:
        marks.write("tick")
        time.sleep(min(TICK, max(0.0, deadline - time.monotonic())))


def on_term(marks: Marks, code: int) -> None:
    """SIGTERM: write ``end`` and exit now, as a job that saves nothing would."""

    def handler(signum: int, frame: object) -> None:
        marks.write("end", code)
        os._exit(code)

    signal.signal(signal.SIGTERM, handler)


def child(path: str, job: str, attempt: int, role: str, seconds: float) -> int:
    marks = Marks(path, job, attempt, role)
    on_term(marks, 128 + signal.SIGTERM)
    marks.write("start")
    tick_until(marks, time.monotonic() + seconds, [False])
    marks.write("end", 0)
    return 0


def leader(path: str, first: float, then: float) -> int:
    job = os.environ.get("WHIRR_JOB_ID", "?")
    attempt = claim_attempt(path, job)
    marks = Marks(path, job, attempt, "leader")
    on_term(marks, 128 + signal.SIGTERM)
    seconds = first if attempt == 1 else then
    me = [sys.executable, os.path.abspath(__file__), "--child", path, job, str(attempt)]
    kids = [
        subprocess.Popen([*me, "group", str(seconds)]),
        subprocess.Popen([*me, "setsid", str(seconds)], start_new_session=True),
    ]
    tick_until(marks, time.monotonic() + seconds, [False])
    codes = [kid.wait() for kid in kids]
    code = 0 if all(c == 0 for c in codes) else 1
    marks.write("end", code)
    return code


def main(argv: list[str]) -> int:
    if argv[:1] == ["--child"]:
        path, job, attempt, role, seconds = argv[1:6]
        return child(path, job, int(attempt), role, float(seconds))
    path, first, then = argv[:3]
    return leader(path, float(first), float(then))


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
