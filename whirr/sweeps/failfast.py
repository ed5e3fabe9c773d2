"""Fail fast: a sweep whose first jobs all fail the same way pauses before it wastes more.

The rule: when the first ``fail_fast`` (N, default 3) jobs of a sweep to end all *failed*
with the same exit code and none logged a metric, the sweep's remaining queued jobs are
held (``job.held``) and the sweep records why (``sweep.paused``); ``whirr sweep resume``
releases them. Any other first N ends settle the rule for good
(``sweep.fail_fast_cleared``). Either way it is decided once, at the end that makes N.

There is no coordinator (local mode has none): whoever records a sweep job's end (a
local worker's write, or a server) applies the rule in the same transaction, so the
pause is atomic with the end that caused it and two ends never both decide. What a
transaction may read is the views (PostgreSQL's group commit has no log reads inside
one), so the sweep's members are read from its stream *before* it: a member is recorded
before its job can end, so the list read then holds every job that matters.

Kept apart from the sweep service so other search methods (and their own stopping
rules) can sit beside it.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from pathlib import Path

import msgspec

from whirr.events import (
    JobFinished,
    JobHeld,
    Pending,
    SweepCreated,
    SweepFailFastCleared,
    SweepJobAdded,
    SweepPaused,
    job_stream,
)
from whirr.events.sweeps import sweep_stream
from whirr.projections import JobView, RunView
from whirr.projections.jobs import Ended, Queued
from whirr.store import EventStore, ViewReader

#: The tag every job of a sweep carries (``sweep:<name>``).
TAG_PREFIX = "sweep:"
#: The events after which the rule has nothing left to decide for a sweep.
SETTLED = ("sweep.paused", "sweep.fail_fast_cleared")
#: The default N.
DEFAULT_FAIL_FAST = 3


class Watch(msgspec.Struct, frozen=True):
    """A sweep whose rule is not settled yet, as read before the transaction."""

    sweep: str
    limit: int
    members: tuple[int, ...]


class End(msgspec.Struct, frozen=True):
    """One of the sweep's first ends, as the rule sees it."""

    job_id: int
    outcome: str
    exit_code: int | None
    #: The run logged a metric (True), did not (False), or nobody here can tell (None).
    logged: bool | None


def paused_reason(ends: Sequence[End]) -> str | None:
    """Why the sweep pauses, given its first N ends; None when it goes on. Pure.

    Only N *identical failures* pause it: each ``failed`` (not timed out or cancelled:
    those say nothing about the command), with one exit code, known to have logged no
    metric (a run whose files cannot be seen here never counts as silent)."""
    if not ends:
        return None
    code = ends[0].exit_code
    same = all(
        e.outcome == "failed" and e.exit_code is not None and e.exit_code == code for e in ends
    )
    if not same or any(e.logged is not False for e in ends):
        return None
    ids = ", ".join(f"#{e.job_id}" for e in ends)
    return (
        f"its first {len(ends)} jobs to end ({ids}) all failed with exit code {code} "
        "and logged no metric"
    )


def held_reason(sweep: str, failed: Sequence[int], code: int | None) -> str:
    """What a held job of a paused sweep says beside its status (short: it is a column
    of ``whirr status``; ``whirr sweep status`` has the whole reason)."""
    ids = ", ".join(f"#{job_id}" for job_id in failed)
    return (
        f"sweep {sweep} paused: {ids} failed with exit {code}, no metric; "
        f"`whirr sweep resume {sweep}`"
    )


def worker_note(sweep: str, reason: str) -> str:
    """The line a worker prints when the end it recorded paused a sweep."""
    return (
        f"Sweep {sweep} paused (fail-fast): {reason}; its queued jobs are held until "
        f"`whirr sweep resume {sweep}`."
    )


def sweeps_of(tags: Sequence[str]) -> list[str]:
    """The sweeps a job's tags name (``sweep:<name>``)."""
    return [t.removeprefix(TAG_PREFIX) for t in tags if t.startswith(TAG_PREFIX)]


def paused_by(store: EventStore, job_id: int, tags: Sequence[str]) -> str | None:
    """``worker_note`` when the end of job ``job_id`` paused its sweep, else None."""
    for name in sweeps_of(tags):
        for rec in store.read(stream=sweep_stream(name), types=["sweep.paused"]):
            event = rec.event
            if isinstance(event, SweepPaused) and job_id in event.failed:
                return worker_note(name, event.reason)
    return None


def holding(store: EventStore, sweep: str) -> str | None:
    """Before queuing another job of ``sweep``: the reason to hold it, when the sweep
    is paused (a sweep still being submitted can pause meanwhile: its later jobs are
    held as they are queued, not run)."""
    found = store.read(stream=sweep_stream(sweep), types=["sweep.paused", "sweep.resumed"])
    last = found[-1].event if found else None
    if isinstance(last, SweepPaused):
        return held_reason(sweep, last.failed, last.exit_code)
    return None


def logged_metric(run: RunView | None) -> bool | None:
    """Did the run log a metric? True for a numeric summary value or a non-empty
    ``metrics.jsonl``; None when the run or its directory cannot be seen from here (a
    server that does not share a remote worker's files)."""
    if run is None:
        return None
    if any(_is_number(v) for v in run.summary.values()):
        return True
    run_dir = Path(run.run_dir)
    try:
        return (run_dir / "metrics.jsonl").stat().st_size > 0
    except FileNotFoundError:
        return False if run_dir.is_dir() else None
    except OSError:
        return None


def _is_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def watch(store: EventStore, job_id: int) -> Watch | None:
    """Before the transaction that may end ``job_id``: its sweep, when the job is one of
    a sweep whose rule is on and not settled, and fewer than N of its jobs ended yet
    (reads stop at the N-th ended job found); else None, and the end costs nothing more."""
    job = store.job(job_id)
    if job is None:
        return None
    for name in sweeps_of(job.tags):
        stream = sweep_stream(name)
        head = store.read(stream=stream, types=["sweep.created", *SETTLED])
        if not head or not isinstance(head[0].event, SweepCreated):
            continue
        limit = head[0].event.fail_fast
        if limit <= 0 or len(head) > 1:
            return None  # off, or settled
        members = tuple(
            r.event.job_id
            for r in store.read(stream=stream, types=["sweep.job_added"])
            if isinstance(r.event, SweepJobAdded)
        )
        if job_id not in members:
            continue  # a job tagged by hand, not a member
        ended = 0
        for member in members:
            view = store.job(member) if member != job_id else None
            ended += view is not None and isinstance(view.state, Ended)
            if ended >= limit:
                return None  # the rule's moment passed (ends it did not see)
        return Watch(name, limit, members)
    return None


def decide(
    reader: ViewReader,
    watched: Watch,
    pending: Sequence[Pending],
    logged: Callable[[RunView | None], bool | None] = logged_metric,
) -> list[Pending]:
    """Inside the transaction that appends ``pending``: the rule's events when these
    ends are among the sweep's first N and make it N (else none)."""
    members = set(watched.members)
    ending = [
        p.event for p in pending if isinstance(p.event, JobFinished) and p.event.job_id in members
    ]
    if not ending:
        return []
    views = {m: reader.job(m) for m in watched.members}
    now_ending = {e.job_id for e in ending}
    before = sorted(
        (
            v
            for v in views.values()
            if v is not None and isinstance(v.state, Ended) and v.id not in now_ending
        ),
        key=lambda v: (v.finished_at, v.version),
    )
    if len(before) >= watched.limit or len(before) + len(ending) < watched.limit:
        return []  # settled by an earlier end, or not yet N ends
    firsts: list[End] = [
        End(v.id, v.status, v.exit_code, logged(reader.run(v.run_id))) for v in before
    ]
    for event in ending:
        view = views.get(event.job_id)
        run = reader.run(view.run_id) if view is not None else None
        firsts.append(End(event.job_id, event.outcome, event.exit_code, logged(run)))
    firsts = firsts[: watched.limit]
    reason = paused_reason(firsts)
    stream = sweep_stream(watched.sweep)
    if reason is None:
        cleared = SweepFailFastCleared(sweep=watched.sweep, ended=[e.job_id for e in firsts])
        return [Pending(stream, cleared)]
    held = [v for v in views.values() if v is not None and _holdable(v) and v.id not in now_ending]
    why = held_reason(watched.sweep, [e.job_id for e in firsts], firsts[0].exit_code)
    paused = SweepPaused(
        sweep=watched.sweep,
        reason=reason,
        failed=[e.job_id for e in firsts],
        exit_code=firsts[0].exit_code,
        held=[v.id for v in held],
    )
    return [
        Pending(stream, paused),
        *(Pending(job_stream(v.id), JobHeld(job_id=v.id, reason=why)) for v in held),
    ]


def _holdable(job: JobView) -> bool:
    return isinstance(job.state, Queued) and job.held is None


def around(
    store: EventStore, job_id: int, decision: Callable[[ViewReader], Sequence[Pending]]
) -> Callable[[ViewReader], Sequence[Pending]]:
    """``decision`` (one that may end job ``job_id``) with the rule applied after it, in
    the same transaction; ``decision`` itself when the job's end cannot matter."""
    watched = watch(store, job_id)
    if watched is None:
        return decision

    def with_rule(reader: ViewReader) -> Sequence[Pending]:
        pending = list(decision(reader))
        return [*pending, *decide(reader, watched, pending)]

    return with_rule
