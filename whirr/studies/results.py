"""What a study reads of its jobs: each job's outcome, and the value its run reached on a
metric (its summary, else the last value it logged).

Reports and rankings are computed where the runs' files are, by ``StoreResults``: in a
project for its commands, on a server for its ``/sweeps/{name}/report`` and
``/ablations/{name}/ranking`` routes (``whirr.facade.local_studies``), so a study has one
answer whichever asks. Run files are read through ``whirr.services.run_files`` (checked
paths, no symlinks followed, one torn-line policy), from the end: the last value of a
metric is usually in the last rows, and a run may have logged millions.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any, Protocol

import msgspec

from whirr.projections import JobView
from whirr.services import run_files
from whirr.store import EventStore

#: Rows read from the end of a metrics file first; each further look reads 8x more.
TAIL_ROWS = 1024


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
    """``Results`` of one store: job views and run summaries from the store, logged
    values from the run files under ``runs_dir``."""

    def __init__(self, store: EventStore, runs_dir: Path) -> None:
        self.store = store
        self.runs_dir = runs_dir

    def outcome(self, job_id: int) -> JobOutcome | None:
        """The job's outcome, from its view."""
        return outcome_of(self.store.job(job_id))

    def metric(self, run_id: str, metric: str) -> float | None:
        """``summary[metric]`` when numeric, else the last numeric ``metric`` in the run's
        ``metrics.jsonl``, else None (also for a run the store does not know)."""
        run = self.store.run(run_id)
        if run is None:
            return None
        summarised = as_number(run.summary.get(metric))
        if summarised is not None:
            return summarised
        return last_logged(self.runs_dir, run_id, metric)


def last_logged(runs_dir: Path, run_id: str, metric: str) -> float | None:
    """The last numeric ``metric`` among every whole row of the run's ``metrics.jsonl``.

    Reads from the end, 8x more rows each time the value is not there; a tail shorter
    than asked (the file's start, or garbled lines skipped) ends with one full read."""
    count = TAIL_ROWS
    while True:
        rows = run_files.tail_rows(runs_dir, run_id, "metrics.jsonl", count)
        found = _last_number(rows, metric)
        if found is not None:
            return found
        if len(rows) < count:
            break
        count *= 8
    # The tail may have skipped garbled lines, so it cannot tell the file's start: read
    # every row once (a small file, or a metric the run never logged).
    return _last_number(run_files.read_metric_rows(runs_dir, run_id, 0, 2**62), metric)


def _last_number(rows: list[dict[str, Any]], metric: str) -> float | None:
    for row in reversed(rows):
        value = as_number(row.get(metric))
        if value is not None:
            return value
    return None


def as_number(value: Any) -> float | None:
    """``value`` as a finite float, or None (bools, strings, NaN, null are not numbers)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    number = float(value)
    return number if math.isfinite(number) else None
