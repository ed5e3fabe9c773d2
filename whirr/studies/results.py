"""What a study reads of its jobs: each job's outcome, and the value its run reached on a
metric (its summary, else the last value it logged).

A study's report is computed the same way whether its jobs live in the local project or on
a server: only the ``Results`` it is given differ (``StoreResults`` here, reading the store
and the run files; ``whirr.studies.remote.ApiResults`` through the HTTP API)."""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, Protocol

import msgspec

from whirr.projections import JobView, RunView
from whirr.store import EventStore


class JobOutcome(msgspec.Struct, frozen=True):
    """What a study needs to know of one of its jobs."""

    status: str
    run_id: str
    #: The job's process started at least once (so its run may hold values).
    started: bool


def outcome_of(job: JobView | None) -> JobOutcome | None:
    """The outcome of a job view (None for a job the store does not know)."""
    if job is None:
        return None
    return JobOutcome(job.status, job.run_id, job.started_at is not None)


class Results(Protocol):
    """Where a study reads its jobs' outcomes and its runs' metric values."""

    def outcome(self, job_id: int) -> JobOutcome | None:
        """The job's status and run (None if it does not exist)."""
        ...

    def metric(self, run_id: str, metric: str) -> float | None:
        """The value run ``run_id`` reached on ``metric`` (None if none)."""
        ...


class StoreResults:
    """``Results`` of the local project: job views from the store, values from run files."""

    def __init__(self, store: EventStore) -> None:
        self.store = store

    def outcome(self, job_id: int) -> JobOutcome | None:
        """The job's outcome, from its view."""
        return outcome_of(self.store.job(job_id))

    def metric(self, run_id: str, metric: str) -> float | None:
        """The run's value, from its summary or its ``metrics.jsonl``."""
        return metric_value(self.store.run(run_id), metric)


def read_metric_rows(run_dir: str | Path) -> list[dict[str, Any]]:
    """The rows of a run's ``metrics.jsonl`` (tolerant of a torn last line)."""
    try:
        from whirr.run import read_metrics
    except ImportError:  # pragma: no cover - only before the tracking library lands
        return _read_jsonl(Path(run_dir) / "metrics.jsonl")
    try:
        return read_metrics(run_dir)
    except ValueError:
        # A damaged line mid-file: a study's report should still show what can be read.
        return _read_jsonl(Path(run_dir) / "metrics.jsonl")


def _read_jsonl(path: Path) -> list[dict[str, Any]]:
    import msgspec

    try:
        lines = path.read_bytes().splitlines()
    except FileNotFoundError:
        return []
    rows = []
    for line in lines:
        try:
            rows.append(msgspec.json.decode(line))
        except msgspec.DecodeError:
            continue
    return rows


def as_number(value: Any) -> float | None:
    """``value`` as a finite float, or None (bools, strings, NaN, null are not numbers)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    number = float(value)
    return number if math.isfinite(number) else None


def pick_value(
    summary: Mapping[str, Any], rows: Callable[[], list[dict[str, Any]]], metric: str
) -> float | None:
    """``summary[metric]`` when numeric, else the last numeric ``metric`` of the metric
    rows (read only when needed: they can be long), else None."""
    summarised = as_number(summary.get(metric))
    if summarised is not None:
        return summarised
    for row in reversed(rows()):
        value = as_number(row.get(metric))
        if value is not None:
            return value
    return None


def metric_value(run: RunView | None, metric: str) -> float | None:
    """``summary[metric]`` when numeric, else the last numeric ``metric`` in
    ``metrics.jsonl``, else None."""
    if run is None:
        return None
    return pick_value(run.summary, lambda: read_metric_rows(run.run_dir), metric)


def metric_series(run_dir: str | Path, metric: str) -> list[float]:
    """Every numeric value of ``metric`` a run logged, in order."""
    values = (as_number(row.get(metric)) for row in read_metric_rows(run_dir))
    return [v for v in values if v is not None]
