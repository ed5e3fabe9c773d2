"""Where ``whirr watch`` gets its state: the local project's store and run files, or a
server's HTTP API and event stream."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any, Protocol

import msgspec

from whirr.clock import utc_now
from whirr.watch.model import (
    Detail,
    JobRow,
    WatchState,
    job_row,
    main_metric,
    order_jobs,
    worker_row,
)

FINISHED = ["completed", "failed", "cancelled", "timed_out"]
#: How much of a log or metrics file is read for one frame: the tail is what is shown.
TAIL_BYTES = 64 * 1024
#: Stopped workers stay listed this long.
STOPPED_SHOWN_SECONDS = 3600.0


class Source(Protocol):
    """What the watcher needs from a backend."""

    label: str

    def position(self) -> int:
        """The newest event's position (a change means the state changed)."""
        ...

    def snapshot(self, selected: int | None) -> WatchState:
        """The current state, with ``selected`` (or a sensible default) detailed."""
        ...


def tail_lines(path: Path, max_bytes: int = TAIL_BYTES) -> list[str]:
    """The complete lines in the last ``max_bytes`` of a file (none if it is missing)."""
    try:
        with open(path, "rb") as fh:
            size = fh.seek(0, 2)
            start = max(0, size - max_bytes)
            fh.seek(start)
            data = fh.read()
    except (FileNotFoundError, IsADirectoryError):
        return []
    lines = data.decode("utf-8", errors="replace").splitlines()
    return lines[1:] if start > 0 and lines else lines


def _rows(lines: list[str]) -> list[dict[str, Any]]:
    rows = []
    for line in lines:
        try:
            row = msgspec.json.decode(line)
        except msgspec.DecodeError:
            continue  # a line cut by the tail window or by a write in progress
        if isinstance(row, dict):
            rows.append(row)
    return rows


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


class LocalSource:
    """The project's store (views and log head) and its run files."""

    def __init__(
        self,
        store: Any,
        runs_dir: Path,
        *,
        label: str,
        heartbeat_timeout: float,
        metric: str | None = None,
        finished_limit: int = 10,
        clock: Callable[[], datetime] = utc_now,
    ) -> None:
        self.store = store
        self.runs_dir = runs_dir
        self.label = label
        self.heartbeat_timeout = heartbeat_timeout
        self.metric = metric
        self.finished_limit = finished_limit
        self.clock = clock

    def position(self) -> int:
        """The log's head."""
        return int(self.store.head())

    def snapshot(self, selected: int | None) -> WatchState:
        """Jobs, workers and counts from the views; the selected job's files."""
        position = self.position()
        now = self.clock().astimezone()  # shown as local time
        views = self.store.jobs(["queued", "running"]) + self.store.jobs(
            FINISHED, limit=self.finished_limit
        )
        jobs = order_jobs([job_row(v) for v in views], self.finished_limit)
        workers = [
            worker_row(w, w.is_online(now, self.heartbeat_timeout))
            for w in self.store.workers()
            if not w.stopped or (now - w.heartbeat_at).total_seconds() < STOPPED_SHOWN_SECONDS
        ]
        chosen = _select(jobs, selected)
        detail = None
        if chosen is not None:
            job = next(j for j in jobs if j.id == chosen)
            run_dir = self.runs_dir / job.run_id
            metric, values = _series(_rows(tail_lines(run_dir / "metrics.jsonl")), self.metric)
            detail = Detail(
                job_id=chosen,
                log_lines=tail_lines(run_dir / "output.log"),
                metric=metric,
                values=values,
            )
        return WatchState(
            source=self.label,
            now=now,
            jobs=jobs,
            workers=workers,
            counts=self.store.job_counts(),
            selected=chosen,
            detail=detail,
            position=position,
        )


class ServerSource:
    """A server: state from its API, changes from its event stream (SSE)."""

    def __init__(
        self,
        client: Any,
        *,
        metric: str | None = None,
        finished_limit: int = 10,
        clock: Callable[[], datetime] = utc_now,
    ) -> None:
        self.client = client
        self.label = client.url
        self.metric = metric
        self.finished_limit = finished_limit
        self.clock = clock
        self._position = int(getattr(client.status(), "head", 0))
        self._logs: dict[int, tuple[int, list[str]]] = {}
        self._follower = threading.Thread(target=self._follow, name="watch-events", daemon=True)
        self._follower.start()

    def _follow(self) -> None:
        """Track the newest position from the event stream, reconnecting when it drops.
        (A daemon thread: it holds no state worth flushing when the view exits.)"""
        while True:
            try:
                for event in self.client.events(after=self._position, follow=True):
                    self._position = max(self._position, event.position)
            except Exception:  # the server went away: try again shortly, never crash the view
                time.sleep(1.0)

    def position(self) -> int:
        """The newest position the event stream reported."""
        return self._position

    def _log_lines(self, job_id: int) -> list[str]:
        """The job's log, fetched incrementally (only the bytes not seen yet)."""
        offset, lines = self._logs.get(job_id, (0, []))
        chunk = self.client.logs(job_id, offset)
        if chunk:
            text = chunk.decode("utf-8", errors="replace")
            merged = ("\n".join(lines) + ("\n" if lines else "") + text).splitlines()
            lines = merged[-200:]
            offset += len(chunk)
            self._logs[job_id] = (offset, lines)
        return lines

    def snapshot(self, selected: int | None) -> WatchState:
        """Jobs, workers and counts from the API; the selected job's log and metrics."""
        position = self._position
        now = self.clock().astimezone()  # shown as local time
        active = self.client.list_jobs(status="active", limit=500)
        finished = self.client.list_jobs(status=",".join(FINISHED), limit=self.finished_limit)
        jobs = order_jobs([job_row(j) for j in active + finished], self.finished_limit)
        workers = [
            worker_row(w, bool(getattr(w, "online", True))) for w in self.client.list_workers()
        ]
        status = self.client.status()
        counts = {
            k: getattr(status, k, 0)
            for k in ("queued", "running", "completed", "failed", "cancelled", "timed_out")
        }
        chosen = _select(jobs, selected)
        detail = None
        if chosen is not None:
            job = next(j for j in jobs if j.id == chosen)
            rows = self.client.metrics(job.run_id) if job.started_at is not None else []
            metric, values = _series(rows, self.metric)
            detail = Detail(
                job_id=chosen, log_lines=self._log_lines(chosen), metric=metric, values=values
            )
        return WatchState(
            source=self.label,
            now=now,
            jobs=jobs,
            workers=workers,
            counts=counts,
            selected=chosen,
            detail=detail,
            position=position,
        )
