"""Reading the original whirr 0.5.3's database (read-only): its jobs and runs rows."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import apsw
import msgspec

from whirr.migrate.detect import is_original, queries
from whirr.store.protocol import StoreError


class OriginalJob(msgspec.Struct, frozen=True, kw_only=True):
    """One row of the original's jobs table."""

    id: int
    name: str | None
    command_argv: list[str]
    workdir: str
    config: dict[str, Any]
    status: str
    tags: list[str]
    attempt: int
    parent_job_id: int | None
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    worker_id: str | None
    heartbeat_at: datetime | None
    pid: int | None
    exit_code: int | None
    error_message: str | None


class OriginalRun(msgspec.Struct, frozen=True, kw_only=True):
    """One row of the original's runs table."""

    id: str
    job_id: int | None
    name: str | None
    config: dict[str, Any]
    tags: list[str]
    status: str
    started_at: datetime
    finished_at: datetime | None
    duration_seconds: float | None
    summary: dict[str, Any]
    git: dict[str, Any] | None
    hostname: str
    run_dir: str | None


class Original(msgspec.Struct, frozen=True):
    """What the original database holds."""

    jobs: list[OriginalJob]
    runs: list[OriginalRun]


class NotOriginal(StoreError):
    """The database is neither this whirr's log nor the original's."""


def parse_time(text: object) -> datetime | None:
    """A timestamp as 0.5.3 wrote it (``2025-01-01 10:00:00`` from SQLite's datetime('now'),
    ``2025-01-01T10:00:00Z``, with or without fractions), in UTC; None when absent/unreadable."""
    if not isinstance(text, str) or not text.strip():
        return None
    try:
        at = datetime.fromisoformat(text.strip())
    except ValueError:
        return None
    return at.replace(tzinfo=UTC) if at.tzinfo is None else at.astimezone(UTC)


def _json(text: object, default: Any) -> Any:
    if not isinstance(text, str | bytes) or not text:
        return default
    try:
        value = msgspec.json.decode(text)
    except msgspec.DecodeError:
        return default
    return value if isinstance(value, type(default)) else default


def _job(row: tuple[Any, ...], now: datetime) -> OriginalJob:
    (job_id, name, argv, workdir, config, status, tags, attempt, parent, created, started,
     finished, worker, heartbeat, pid, exit_code, error, _run_id) = row  # fmt: skip
    return OriginalJob(
        id=int(job_id),
        name=name,
        command_argv=[str(a) for a in _json(argv, [])],
        workdir=str(workdir or ""),
        config=_json(config, {}),
        status=str(status or "queued"),
        tags=[str(t) for t in _json(tags, [])],
        attempt=max(1, int(attempt or 1)),
        parent_job_id=int(parent) if parent else None,
        created_at=parse_time(created) or now,
        started_at=parse_time(started),
        finished_at=parse_time(finished),
        worker_id=worker,
        heartbeat_at=parse_time(heartbeat),
        pid=int(pid) if isinstance(pid, int) and pid >= 0 else None,
        exit_code=int(exit_code) if isinstance(exit_code, int) else None,
        error_message=error,
    )


def _run(row: tuple[Any, ...], now: datetime) -> OriginalRun:
    (run_id, job_id, name, config, tags, status, started, finished, duration, summary,
     git_hash, git_dirty, hostname, run_dir) = row  # fmt: skip
    git = {"commit": git_hash, "dirty": bool(git_dirty)} if git_hash else None
    return OriginalRun(
        id=str(run_id),
        job_id=int(job_id) if job_id else None,
        name=name,
        config=_json(config, {}),
        tags=[str(t) for t in _json(tags, [])],
        status=str(status or "running"),
        started_at=parse_time(started) or now,
        finished_at=parse_time(finished),
        duration_seconds=float(duration) if isinstance(duration, int | float) else None,
        summary=_json(summary, {}),
        git=git,
        hostname=str(hostname or ""),
        run_dir=run_dir,
    )


def read_original(db: Path, now: datetime) -> Original:
    """The jobs and runs of the original database ``db`` (opened read-only)."""
    try:
        conn = apsw.Connection(str(db), flags=apsw.SQLITE_OPEN_READONLY)
    except apsw.Error as exc:
        raise StoreError(f"cannot open {db}: {exc}") from None
    try:
        conn.set_busy_timeout(30_000)
        if not is_original(conn):
            raise NotOriginal(f"{db} is not a database of the original whirr 0.5.3")
        q = queries()
        with conn:  # one read transaction: jobs and runs as of one moment
            jobs = [_job(row, now) for row in conn.execute(q["jobs"])]
            runs = [_run(row, now) for row in conn.execute(q["runs"])]
    except apsw.Error as exc:
        raise StoreError(f"cannot read {db}: {exc}") from None
    finally:
        conn.close()
    return Original(jobs=jobs, runs=runs)
