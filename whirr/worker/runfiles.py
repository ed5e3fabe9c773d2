"""The files a worker keeps for a job's run: the directory, config.json and meta.json.

A job that never imports whirr still gets a complete run directory; a job that does use
the tracking library writes richer files itself, and the worker merges its final status
into ``meta.json`` from the run's view, which holds the true end.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from whirr.filemodes import open_private, private_dir, write_private
from whirr.run import write_meta
from whirr.wire import schemas


def start_run_files(run_dir: Path, job: schemas.Job) -> None:
    """Create the run directory with config.json and an initial meta.json."""
    private_dir(run_dir)  # 0700: the job's output and config are its owner's only
    private_dir(run_dir / "artifacts")
    config_path = run_dir / "config.json"
    if not config_path.exists():
        write_private(config_path, json.dumps(job.config, indent=2, default=str).encode())
    # write_meta merges with what is on disk (a resumed attempt keeps its summary).
    meta = _base_meta(run_dir, job.run_id, job.name, job.tags, job.id)
    write_meta(run_dir, {**meta, "status": "running"})


def finish_run_files(run_dir: Path, run: schemas.Run | None) -> None:
    """Merge the run's final state into meta.json."""
    if run is None:
        return
    meta = _base_meta(run_dir, run.id, run.name, run.tags, run.job_id)
    meta.update(
        status=run.status,
        started_at=_iso(run.started_at),
        finished_at=_iso(run.finished_at),
        duration_seconds=run.duration_seconds,
        summary=run.summary,  # merged over the script's own summary by write_meta
    )
    if run.git is not None:
        meta["git"] = run.git
    write_meta(run_dir, meta)


def fail_run_files(run_dir: Path, error: str) -> None:
    """Record in output.log and meta.json that the job never started."""
    fd = open_private(run_dir / "output.log", os.O_WRONLY | os.O_APPEND)
    with os.fdopen(fd, "a", encoding="utf-8") as log:
        log.write(f"whirr: {error}\n")
    write_meta(run_dir, {"status": "failed", "error": error})


def _base_meta(
    run_dir: Path, run_id: str, name: str | None, tags: list[str], job_id: int | None
) -> dict[str, Any]:
    return {
        "id": run_id,
        "name": name,
        "tags": tags,
        "config_file": str(run_dir / "config.json"),
        "metrics_file": str(run_dir / "metrics.jsonl"),
        "artifacts_dir": str(run_dir / "artifacts"),
        "job_id": job_id,
    }


def _iso(at: Any) -> str | None:
    return None if at is None else at.isoformat().replace("+00:00", "Z")
