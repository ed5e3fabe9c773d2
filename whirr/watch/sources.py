"""Where ``whirr watch`` gets its state: one ``Whirr`` (``whirr.facade``), a local
project's or a server's, asked the same questions either way.

A frame costs a handful of small questions (status, jobs, workers, the selected job's new
output and last metric rows); between frames only ``status`` is asked, and only its log
head is looked at: the next frame is taken when the head moved (or the interval passed,
for files and the clock, which move without events).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

from whirr.clock import utc_now
from whirr.facade import Whirr
from whirr.services.errors import NotFound
from whirr.watch.model import (
    Detail,
    JobRow,
    WatchState,
    job_row,
    main_metric,
    order_jobs,
    worker_row,
)
from whirr.wire import schemas

FINISHED = ["completed", "failed", "cancelled", "timed_out"]
#: How much of a job's output a frame keeps (its tail is what is shown).
TAIL_BYTES = 64 * 1024
#: Metric rows a frame reads (their last values are charted).
TAIL_ROWS = 500
#: Most active jobs listed.
ACTIVE_LIMIT = 1000
#: Stopped workers stay listed this long.
STOPPED_SHOWN_SECONDS = 3600.0
COUNTED = ("queued", "running", "completed", "failed", "cancelled", "timed_out")


class Output:
    """The tail of one job attempt's output, read on from where the last frame stopped
    (the first frame reads only the last ``TAIL_BYTES``)."""

    def __init__(self, attempt: int) -> None:
        self.attempt = attempt
        self.offset: int | None = None
        self.data = b""
        self.cut = False  # ``data`` starts mid-way through the output

    def lines(self, whirr: Whirr, job_id: int) -> list[str]:
        """The complete lines kept, after reading what was written since last time."""
        if self.offset is None:
            start, self.data = whirr.log_tail(job_id, TAIL_BYTES)
            self.offset, self.cut = start + len(self.data), start > 0
        else:
            chunk = whirr.read_log(job_id, self.offset)
            self.offset += len(chunk)
            if chunk:
                self.data += chunk
                if len(self.data) > TAIL_BYTES:
                    self.data, self.cut = self.data[-TAIL_BYTES:], True
        lines = self.data.decode("utf-8", errors="replace").splitlines()
        return lines[1:] if self.cut and lines else lines


def _series(rows: list[dict[str, Any]], metric: str | None) -> tuple[str | None, list[float]]:
    metric = metric or main_metric(rows)
    if metric is None:
        return None, []
    values = [
        float(r[metric])
        for r in rows
        if isinstance(r.get(metric), int | float) and not isinstance(r.get(metric), bool)
    ]
    return metric, values


def _select(jobs: list[JobRow], selected: int | None) -> int | None:
    if selected is not None and any(j.id == selected for j in jobs):
        return selected
    running = [j for j in jobs if j.status == "running"]
    return (running or jobs)[0].id if jobs else None


def _shown(worker: schemas.WorkerOut, now: datetime) -> bool:
    """Stopped workers only while they stopped recently."""
    if worker.status != "stopped":
        return True
    return (now - worker.heartbeat_at).total_seconds() < STOPPED_SHOWN_SECONDS


class WhirrSource:
    """The watched state of one ``Whirr``."""

    def __init__(
        self,
        whirr: Whirr,
        *,
        metric: str | None = None,
        finished_limit: int = 10,
        clock: Callable[[], datetime] = utc_now,
    ) -> None:
        self.whirr = whirr
        self.label = whirr.label
        self.metric = metric
        self.finished_limit = finished_limit
        self.clock = clock
        self._output: dict[int, Output] = {}

    def position(self) -> int:
        """The log's head (a change means the state changed)."""
        return self.whirr.status().head

    def snapshot(self, selected: int | None) -> WatchState:
        """Jobs, workers and counts; ``selected`` (or the first running job) detailed.
        ``position`` is the head seen before anything else was read, so a change made
        while the frame is taken shows in the next one."""
        status = self.whirr.status()
        now = self.clock().astimezone()  # shown as local time
        found = self.whirr.jobs(["queued", "running"], ACTIVE_LIMIT) + self.whirr.jobs(
            FINISHED, self.finished_limit
        )
        jobs = order_jobs([job_row(j) for j in found], self.finished_limit)
        workers = [worker_row(w) for w in self.whirr.workers() if _shown(w, now)]
        chosen = _select(jobs, selected)
        detail = None
        if chosen is not None:
            detail = self._detail(next(j for j in jobs if j.id == chosen))
        return WatchState(
            source=self.label,
            now=now,
            jobs=jobs,
            workers=workers,
            counts={k: getattr(status, k) for k in COUNTED if getattr(status, k)},
            selected=chosen,
            detail=detail,
            position=status.head,
        )

    def _detail(self, job: JobRow) -> Detail:
        """The job's last log lines and its metric's last values."""
        output = self._output.get(job.id)
        if output is None or output.attempt != job.attempt:  # a new attempt rewrites it
            output = self._output[job.id] = Output(job.attempt)
        try:
            rows = self.whirr.tail(job.run_id, "metrics", TAIL_ROWS)
        except NotFound:  # no run yet (a queued job)
            rows = []
        metric, values = _series(rows, self.metric)
        return Detail(
            job_id=job.id, log_lines=output.lines(self.whirr, job.id), metric=metric, values=values
        )
