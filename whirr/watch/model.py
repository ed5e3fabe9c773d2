"""The state ``whirr watch`` shows: plain rows built from the facade's wire types. Pure."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import msgspec

from whirr.wire import schemas

ACTIVE = ("running", "queued")


class JobRow(msgspec.Struct, frozen=True, kw_only=True):
    """One job line."""

    id: int
    name: str | None
    status: str
    attempt: int
    worker_id: str | None
    command: list[str]
    run_id: str
    created_at: datetime
    started_at: datetime | None = None
    finished_at: datetime | None = None
    cancel_requested: bool = False
    #: A running job's lease: past it, its worker is lost (``whirr.wire.leases``).
    lease_expires_at: datetime | None = None


class WorkerRow(msgspec.Struct, frozen=True, kw_only=True):
    """One worker line; ``status`` is idle, busy, offline or stopped."""

    id: str
    hostname: str
    status: str
    job_ids: list[int]
    heartbeat_at: datetime
    gpu_ids: list[int] = []


class Detail(msgspec.Struct, frozen=True, kw_only=True):
    """The selected job's last log lines and its main metric's values."""

    job_id: int
    log_lines: list[str] = []
    metric: str | None = None
    values: list[float] = []


class WatchState(msgspec.Struct, frozen=True, kw_only=True):
    """Everything one frame shows; rendering is a function of this alone."""

    source: str
    now: datetime
    jobs: list[JobRow]
    workers: list[WorkerRow]
    counts: dict[str, int]
    selected: int | None = None
    detail: Detail | None = None
    position: int = 0


def order_jobs(jobs: list[JobRow], finished_limit: int) -> list[JobRow]:
    """Running jobs, then queued ones (oldest first), then the newest finished ones."""
    running = sorted((j for j in jobs if j.status == "running"), key=lambda j: j.id)
    queued = sorted((j for j in jobs if j.status == "queued"), key=lambda j: j.id)
    finished = sorted((j for j in jobs if j.status not in ACTIVE), key=lambda j: -j.id)
    return running + queued + finished[:finished_limit]


def job_row(job: schemas.Job) -> JobRow:
    """A job's row."""
    return JobRow(
        id=job.id,
        name=job.name,
        status=job.status,
        attempt=job.attempt,
        worker_id=job.worker_id,
        command=list(job.command_argv),
        run_id=job.run_id,
        created_at=job.created_at,
        started_at=job.started_at,
        finished_at=job.finished_at,
        cancel_requested=job.cancel_requested,
        lease_expires_at=job.lease_expires_at,
    )


def worker_row(worker: schemas.WorkerOut) -> WorkerRow:
    """A worker's row (its ``status`` already says ``offline`` by its installation's
    heartbeat timeout)."""
    return WorkerRow(
        id=worker.id,
        hostname=worker.hostname,
        status=worker.status,
        job_ids=list(worker.current_job_ids),
        heartbeat_at=worker.heartbeat_at,
        gpu_ids=list(worker.gpu_ids),
    )


def main_metric(rows: list[dict[str, Any]]) -> str | None:
    """The metric to chart when none was named: the first numeric key the run logged."""
    for row in rows:
        for key, value in row.items():
            if key.startswith("_") or key == "step":
                continue
            if isinstance(value, int | float) and not isinstance(value, bool):
                return key
    return None
