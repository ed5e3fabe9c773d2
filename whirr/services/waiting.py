"""Why a queued job is not running yet: the one answer ``whirr status``, the API and the
dashboard give, local or remote."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime

from whirr.clock import human_duration
from whirr.projections import JobView, WorkerView
from whirr.projections.jobs import Queued
from whirr.projections.queue import unschedulable


def live_workers(
    workers: Sequence[WorkerView], heartbeat_timeout: float, now: datetime
) -> list[WorkerView]:
    """Workers that are online and take new jobs (not draining)."""
    return [w for w in workers if w.is_online(now, heartbeat_timeout) and not w.draining]


def waiting_note(
    job: JobView, now: datetime, live: Callable[[], Sequence[WorkerView]]
) -> str | None:
    """Why a queued job is not running yet (None when nothing but a free worker is
    missing): held (its sweep paused), a dependency, a retry delay, or no live worker
    able to run it. ``live`` gives the live workers, asked only when the others say
    nothing (a read)."""
    state = job.state
    if not isinstance(state, Queued):
        return None
    if job.held:
        return f"held: {job.held}"
    if job.waiting_on:
        return "waiting on " + ",".join(f"#{j}" for j in job.waiting_on)
    if state.not_before is not None and state.not_before > now:
        return f"retry in {human_duration((state.not_before - now).total_seconds())}"
    reason = unschedulable(job, live())
    return f"unschedulable: {reason}" if reason else None
