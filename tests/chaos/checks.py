"""What a chaos trial must show once its fault is over (issue 17), checked from three
independent records: the jobs' own marks file, the processes alive on the machine, and
the server's store.

- every job completed exactly once: the server recorded one ``completed`` end, and one
  attempt of the job ran to its end (``end 0`` in the marks);
- no two attempts of one job overlap in time (from the marks: an attempt lives from its
  leader's start to the last line any of its processes wrote);
- a fault that must not cost an attempt (a short server stall or restart, a database
  restart) cost none: the job ran once;
- no process is left behind: none carries the trial's token in its environment once
  the workers are stopped (a bounded wait, then each one found is reported and killed);
- ``rebuild`` gives the views the live store had: the store's jobs, runs, workers and
  queue views before and after ``rebuild()`` are equal, and the jobs agree with what the
  API said while the server ran.

Each breach is one line in ``Report.problems`` (its kind counted in ``Report.kinds``).
"""

from __future__ import annotations

import contextlib
import os
import signal
import time
from collections import Counter
from collections.abc import Callable, Collection
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

#: The environment variable every worker and job of a trial carries (value: its token).
MARKER_VAR = "CHAOS_MARKER"


@dataclass(frozen=True)
class Mark:
    """One line of the marks file (see ``job.py``)."""

    kind: str
    job: int
    attempt: int
    pid: int
    role: str
    at: float
    code: int | None


def read_marks(path: Path) -> list[Mark]:
    """Every whole line of the marks file (none yet: an empty list)."""
    try:
        text = path.read_text()
    except FileNotFoundError:
        return []
    found = []
    for line in text.splitlines():
        p = line.split()
        if len(p) < 6 or not p[1].isdigit():
            continue
        code = int(p[6]) if len(p) > 6 else None
        found.append(Mark(p[0], int(p[1]), int(p[2]), int(p[3]), p[4], float(p[5]), code))
    return found


@dataclass
class Report:
    """What a trial's checks found. ``problems`` is empty when every promise held."""

    problems: list[str] = field(default_factory=list)
    #: How many breaches of each kind (``overlap``, ``left behind``...).
    kinds: Counter[str] = field(default_factory=Counter)
    #: Per job, the longest time two of its attempts were alive together (ms).
    overlap_ms: dict[int, float] = field(default_factory=dict)
    #: Per job, the attempts its leader started (from the marks).
    attempts: dict[int, int] = field(default_factory=dict)
    #: Jobs that ran again though their fault must not cost an attempt.
    restarted: list[int] = field(default_factory=list)
    #: ``pid cmdline`` of every process found carrying the token after the bounded wait.
    leftovers: list[str] = field(default_factory=list)
    #: Per job, the reasons of its ``job.requeued`` events.
    requeue_reasons: dict[int, list[str]] = field(default_factory=dict)
    #: Figures the fault measured (``requeue_s``: loss of a worker to the next attempt).
    figures: dict[str, float] = field(default_factory=dict)
    #: The trial's steps with their times.
    steps: list[str] = field(default_factory=list)

    def add(self, kind: str, text: str) -> None:
        self.kinds[kind] += 1
        self.problems.append(text)


def check_marks(
    report: Report,
    marks: list[Mark],
    jobs: Collection[int],
    once: Collection[int],
    since: Callable[[float], str],
) -> None:
    """Exactly one attempt of each job ran to its end, no two attempts were alive
    together, and the jobs in ``once`` ran once (``since`` formats a time for messages)."""
    for job in jobs:
        mine = [m for m in marks if m.job == job]
        starts = {m.attempt: m.at for m in mine if (m.kind, m.role) == ("start", "leader")}
        last: dict[int, float] = {}
        for m in mine:
            last[m.attempt] = max(last.get(m.attempt, m.at), m.at)
        report.attempts[job] = len(starts)
        done = sorted(m.attempt for m in mine if (m.kind, m.role, m.code) == ("end", "leader", 0))
        if len(done) != 1:
            report.add("not run to its end once", f"job {job}: attempts {done} ran to their end")
        worst = 0.0
        order = sorted(starts)
        for i, a in enumerate(order):
            for b in order[i + 1 :]:
                both = min(last[a], last[b]) - max(starts[a], starts[b])
                if both > 0:
                    worst = max(worst, both)
                    report.add(
                        "overlap",
                        f"job {job}: attempts {a} and {b} overlap by {both * 1000:.0f} ms "
                        f"(alive +{since(starts[a])}..+{since(last[a])} and "
                        f"+{since(starts[b])}..+{since(last[b])})",
                    )
        report.overlap_ms[job] = worst * 1000
        if job in once and len(starts) > 1:
            report.restarted.append(job)
            report.add(
                "restarted",
                f"job {job} ran {len(starts)} times though its fault must cost no attempt "
                f"(requeued: {report.requeue_reasons.get(job, [])})",
            )


def check_store(
    report: Report, store_url: str, jobs: Collection[int], api_jobs: dict[int, tuple[str, int]]
) -> None:
    """On the stopped server's store: one ``completed`` end per job, the requeue reasons,
    and views equal before and after ``rebuild`` and to what the API said."""
    from whirr.events.jobs import JobFinished, JobRequeued
    from whirr.store import open_store

    store = open_store(store_url)
    try:
        before = views(store)
        finished: dict[int, list[str]] = {}
        for rec in store.read(types=["job.finished", "job.requeued"]):
            ev = rec.event
            if isinstance(ev, JobFinished):
                finished.setdefault(ev.job_id, []).append(ev.outcome)
            elif isinstance(ev, JobRequeued):
                report.requeue_reasons.setdefault(ev.job_id, []).append(ev.reason)
        store.rebuild()
        after = views(store)
    finally:
        store.close()
    for job in jobs:
        outcomes = finished.get(job, [])
        if outcomes.count("completed") != 1:
            report.add("server's ends", f"job {job}: the server recorded ends {outcomes}")
    for name in before:
        if before[name] != after[name]:
            report.add(
                "rebuild", f"rebuild changed the {name} view: {diff(before[name], after[name])}"
            )
    rebuilt = {j.id: (j.status, j.attempt) for j in after["jobs"]}
    if api_jobs != rebuilt:
        report.add("rebuild", f"the API said {api_jobs}, the rebuilt views say {rebuilt}")


def views(store: Any) -> dict[str, Any]:
    """Everything a rebuild derives, in a comparable form."""
    return {
        "jobs": sorted(store.jobs(), key=lambda j: j.id),
        "runs": sorted(store.runs(), key=lambda r: r.id),
        "workers": sorted(store.workers(), key=lambda w: w.id),
        "queue": store.queue_state(),
    }


def diff(before: Any, after: Any) -> str:
    """A short account of what differs between two views (lists compared item by item)."""
    if isinstance(before, list) and isinstance(after, list):
        changed = [f"{b!r} -> {a!r}" for b, a in zip(before, after, strict=False) if b != a]
        if len(before) != len(after):
            changed.append(f"{len(before)} items -> {len(after)}")
        return "; ".join(changed[:3])
    return f"{before!r} -> {after!r}"


def find_leftovers(report: Report, token: str, wait: float) -> None:
    """Processes carrying ``token``: give them ``wait`` seconds to go, then report and
    SIGKILL whatever is left."""
    deadline = time.monotonic() + wait
    found = processes_with(token)
    while found and time.monotonic() < deadline:
        time.sleep(0.1)
        found = processes_with(token)
    for pid, cmdline in found.items():
        report.leftovers.append(f"{pid} {cmdline}")
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    if found:
        report.add(
            "left behind",
            f"{len(found)} process(es) left behind {wait:g}s after the workers stopped: "
            + "; ".join(report.leftovers),
        )


def processes_with(token: str) -> dict[int, str]:
    """pid -> command line of every live process whose environment carries ``token``."""
    needle = f"{MARKER_VAR}={token}".encode()
    found: dict[int, str] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/environ", "rb") as fh:
                if needle not in fh.read().split(b"\0"):
                    continue
            with open(f"/proc/{entry}/cmdline", "rb") as fh:
                cmdline = fh.read().replace(b"\0", b" ").decode(errors="replace").strip()
        except OSError:  # gone meanwhile, or a kernel thread
            continue
        found[int(entry)] = cmdline
    return found
