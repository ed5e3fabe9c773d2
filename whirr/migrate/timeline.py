"""The original's rows as this whirr's events, each at the time 0.5.3 recorded for it.

A job becomes ``job.submitted`` (at its created_at), ``job.claimed`` and ``job.started``
(at its started_at, by its worker) and ``job.finished`` (at its finished_at); a run becomes
``run.started``, ``run.summary_updated``, one ``run.artifact_saved`` per file in its
``artifacts/`` and ``run.finished``. Projections take their times from the envelope, so the
log is appended with a clock set to those times, in time order (``Timed``). A job that
ran under 0.5.3 without calling ``whirr.init()`` had no run row there; here every job
that started has its run (``job-N``, its output.log), as this whirr's worker would make.
"""

from __future__ import annotations

import json
import os
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import msgspec

from whirr.events import (
    Event,
    JobClaimed,
    JobFinished,
    JobStarted,
    JobSubmitted,
    Pending,
    RunArtifactSaved,
    RunFinished,
    RunStarted,
    RunSummaryUpdated,
    job_stream,
    run_stream,
)
from whirr.migrate.original import Original, OriginalJob, OriginalRun

#: How a 0.5.3 job's status reads as an outcome here (queued and running are not ends).
OUTCOMES = {"completed": "completed", "failed": "failed", "cancelled": "cancelled"}
#: The worker id for a job that 0.5.3 recorded as started without saying by whom.
UNKNOWN_WORKER = "whirr-0.5.3"
LOST = "its whirr 0.5.3 worker was gone when the project was migrated"
UNFINISHED = "still running under whirr 0.5.3 when the project was migrated"


class Timed(msgspec.Struct, frozen=True):
    """An event to append at ``at`` (``order`` keeps an entity's events in their order)."""

    at: datetime
    order: int
    pending: Pending


class Timeline:
    """Collects events per entity, keeping each entity's times non-decreasing (0.5.3's
    timestamps have whole seconds and come from several writers)."""

    def __init__(self) -> None:
        self.items: list[Timed] = []

    def entity(self, stream: str, steps: list[tuple[datetime, Event]]) -> None:
        last: datetime | None = None
        for at, event in steps:
            at = max(at, last) if last is not None else at
            last = at
            self.items.append(Timed(at, len(self.items), Pending(stream, event)))

    def ordered(self) -> list[Timed]:
        return sorted(self.items, key=lambda t: (t.at, t.order))


def _job_events(job: OriginalJob, now: datetime) -> list[tuple[datetime, Event]]:
    steps: list[tuple[datetime, Event]] = [
        (
            job.created_at,
            JobSubmitted(
                job_id=job.id,
                command_argv=job.command_argv,
                workdir=job.workdir,
                run_id=f"job-{job.id}",
                name=job.name,
                config=job.config,
                tags=job.tags,
                parent_job_id=job.parent_job_id,
                first_attempt=job.attempt,
                max_attempts=max(3, job.attempt),
            ),
        )
    ]
    if job.started_at is not None:
        worker = job.worker_id or UNKNOWN_WORKER
        lease = (job.heartbeat_at or job.started_at) + timedelta(seconds=60)
        steps.append(
            (job.started_at, JobClaimed(job_id=job.id, worker_id=worker, attempt=job.attempt,
                                        lease_expires_at=lease))
        )  # fmt: skip
        steps.append(
            (job.started_at, JobStarted(job_id=job.id, worker_id=worker, attempt=job.attempt,
                                        pid=job.pid or 0))
        )  # fmt: skip
    outcome, error = job_outcome(job)
    if outcome is not None:
        steps.append(
            (
                job.finished_at or now,
                JobFinished(
                    job_id=job.id,
                    attempt=job.attempt,
                    outcome=outcome,  # type: ignore[arg-type]
                    worker_id=(job.worker_id or UNKNOWN_WORKER) if job.started_at else "",
                    exit_code=job.exit_code,
                    error=error,
                ),
            )
        )
    return steps


def job_outcome(job: OriginalJob) -> tuple[str | None, str | None]:
    """(outcome, error) of a 0.5.3 job here; (None, None) while it is queued."""
    if job.status == "queued":
        return None, None
    if job.status == "running":
        return "failed", LOST  # a live one was refused before (``convert.check_running``)
    outcome = OUTCOMES.get(job.status)
    if outcome is None:
        return "failed", f"whirr 0.5.3 recorded the status {job.status!r}"
    return outcome, job.error_message


def run_dir_of(run_id: str, recorded: str | None, runs_dir: Path) -> Path:
    """Where the run's files are now: the project's ``runs/<id>`` (the project may have
    moved since 0.5.3 wrote absolute paths), else where 0.5.3 said."""
    here = runs_dir / run_id
    if here.is_dir() or not recorded or not Path(recorded).is_dir():
        return here
    return Path(recorded)


def artifacts_in(run_dir: Path) -> list[tuple[str, int]]:
    """(path under artifacts/, size) of each regular file saved there (links left out)."""
    root = run_dir / "artifacts"
    found: list[tuple[str, int]] = []
    for folder, dirs, files in os.walk(root):
        dirs.sort()
        for name in sorted(files):
            path = Path(folder) / name
            if path.is_symlink() or not path.is_file():
                continue
            found.append((path.relative_to(root).as_posix(), path.stat().st_size))
    return found


def _meta_git(run_dir: Path) -> dict[str, Any] | None:
    try:
        meta = json.loads((run_dir / "meta.json").read_text())
    except (OSError, ValueError):
        return None
    git = meta.get("git") if isinstance(meta, dict) else None
    return git if isinstance(git, dict) else None


def _run_events(
    run: OriginalRun, job: OriginalJob | None, runs_dir: Path, now: datetime
) -> list[tuple[datetime, Event]]:
    run_dir = run_dir_of(run.id, run.run_dir, runs_dir)
    steps: list[tuple[datetime, Event]] = [
        (
            run.started_at,
            RunStarted(
                run_id=run.id,
                run_dir=str(run_dir),
                name=run.name,
                job_id=run.job_id,
                config=run.config,
                tags=run.tags,
                hostname=run.hostname,
                git=_meta_git(run_dir) or run.git,
            ),
        )
    ]
    if run.summary:
        steps.append((run.started_at, RunSummaryUpdated(run_id=run.id, summary=run.summary)))
    status, error = run.status, None
    if status == "running":
        ended = job_outcome(job)[0] if job is not None else None
        status, error = (ended, None) if ended else ("crashed", UNFINISHED)
    end = run.finished_at
    if run.duration_seconds is not None and run.duration_seconds >= 0:
        end = run.started_at + timedelta(seconds=run.duration_seconds)  # finer than its stamps
    end = end or (job.finished_at if job is not None else None) or now
    for path, size in artifacts_in(run_dir):
        steps.append((end, RunArtifactSaved(run_id=run.id, path=path, size=size)))
    exit_code = job.exit_code if job is not None else None
    steps.append(
        (end, RunFinished(run_id=run.id, status=status, exit_code=exit_code, error=error))  # type: ignore[arg-type]
    )
    return steps


def _job_run(job: OriginalJob) -> OriginalRun | None:
    """The run a started 0.5.3 job has here when 0.5.3 kept no row for it."""
    if job.started_at is None:
        return None
    outcome, _ = job_outcome(job)
    return OriginalRun(
        id=f"job-{job.id}",
        job_id=job.id,
        name=job.name,
        config=job.config,
        tags=job.tags,
        status=outcome or "running",
        started_at=job.started_at,
        finished_at=job.finished_at,
        duration_seconds=None,
        summary={},
        git=None,
        hostname="",
        run_dir=None,
    )


def timeline(original: Original, runs_dir: Path, now: datetime) -> tuple[list[Timed], int]:
    """Every event of the migrated log, in the order to append them; and the run count."""
    line = Timeline()
    jobs = {job.id: job for job in original.jobs}
    runs = {run.id: run for run in original.runs}
    for job in original.jobs:
        line.entity(job_stream(job.id), _job_events(job, now))
        run_id = f"job-{job.id}"
        if run_id not in runs and (made := _job_run(job)) is not None:
            runs[run_id] = made
    for run in sorted(runs.values(), key=lambda r: (r.started_at, r.id)):
        owner = jobs.get(run.job_id) if run.job_id is not None else None
        line.entity(run_stream(run.id), _run_events(run, owner, runs_dir, now))
    return line.ordered(), len(runs)
