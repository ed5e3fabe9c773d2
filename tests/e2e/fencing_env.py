"""What the lease tests share (issue 17): a job that records when each of its attempts ran,
workers on a short lease, and the history of a job as the server's events tell it.

The job appends ``start <attempt> <pid> <time>`` when it begins and ``end <attempt> <pid>
<time>`` when it exits (SIGTERM included; ``time.time()``), to ``marker`` in its workdir.
Its first attempt runs until SIGTERM (at most ~90 s); a later one ends after a second.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

from server_process import ServerProcess
from worker_processes import WorkerProcs, worker_command

from whirr.client import WhirrClient

#: A lease short enough for a test, with 1 s of kill grace: workers fence 12.85 s after
#: the last renewal they got through (15 - 1 - 1% - 1 s).
LEASE = 15

JOB = """\
import os, signal, sys, time
marker = "marker"
attempt = 1
if os.path.exists(marker):
    attempt += sum(1 for line in open(marker) if line.startswith("start "))
def note(what):
    with open(marker, "a") as out:
        out.write(f"{what} {attempt} {os.getpid()} {time.time():.6f}\\n")
        out.flush()
        os.fsync(out.fileno())
def stop(signum, frame):
    note("end")
    sys.exit(143)
signal.signal(signal.SIGTERM, stop)
note("start")
time.sleep(90 if attempt == 1 else 1)
note("end")
"""

StartWorker = Callable[..., subprocess.Popen[bytes]]


def write_job(workdir: Path) -> list[str]:
    """The marker job in ``workdir``; returns its command."""
    workdir.mkdir(parents=True, exist_ok=True)
    (workdir / "job.py").write_text(JOB)
    return [sys.executable, "job.py"]


def intervals(workdir: Path) -> dict[int, tuple[float, float | None]]:
    """attempt -> (start, end) as the job recorded them (end None: no end line)."""
    spans: dict[int, list[float | None]] = {}
    marker = workdir / "marker"
    for line in marker.read_text().splitlines() if marker.exists() else []:
        what, attempt, _pid, at = line.split()
        span = spans.setdefault(int(attempt), [None, None])
        span[0 if what == "start" else 1] = float(at)
    return {a: (float(s[0] or 0.0), s[1]) for a, s in spans.items()}


def overlap(spans: dict[int, tuple[float, float | None]]) -> float:
    """The longest time two attempts ran at once (seconds; an attempt without an end runs
    on to now)."""
    import time

    worst = 0.0
    items = sorted(spans.items())
    for i, (_, (s1, e1)) in enumerate(items):
        for _, (s2, e2) in items[i + 1 :]:
            end1, end2 = (
                e1 if e1 is not None else time.time(),
                e2 if e2 is not None else time.time(),
            )
            worst = max(worst, min(end1, end2) - max(s1, s2))
    return worst


def workers(kind: str) -> Iterator[StartWorker]:
    """For a fixture: starts workers of ``kind`` (``start(server, url, worker_id)``); they
    are killed when it ends."""
    procs = WorkerProcs()

    def start(server: ServerProcess, url: str, worker_id: str) -> subprocess.Popen[bytes]:
        # Lease ``LEASE``, the worker's default heartbeats (a third of it), kill grace 1 s.
        command = worker_command(
            kind, url, server.data_dir, lease=LEASE, heartbeat=None, worker_id=worker_id
        )
        env = {**server.env, "WHIRR_SERVER_URL": url}
        return procs.spawn(command, env, server.logs_dir / f"{worker_id}.log")

    yield start
    procs.kill_all()


def logs(server: ServerProcess) -> str:
    return "\n".join(
        f"--- {p.name} ---\n{p.read_text(errors='replace')}"
        for p in sorted(server.logs_dir.iterdir())
    )


def history(server: ServerProcess, job_id: int) -> list[tuple[str, int, str]]:
    """(type, attempt, reason or worker) of the job's claims, requeues and ends."""
    kinds = ["job.claimed", "job.requeued", "job.finished", "job.retry_scheduled"]
    with WhirrClient(server.url, token=server.token) as client:
        return [
            (
                e.type,
                int(e.event.get("attempt", 0)),
                str(e.event.get("reason") or e.event.get("worker_id") or ""),
            )
            for e in client.events(follow=False, types=kinds)
            if e.event.get("job_id") == job_id
        ]
