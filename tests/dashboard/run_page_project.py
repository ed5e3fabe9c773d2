"""A small project for the run page's tests: a run whose keys are logged out of
alphabetical order with step-like keys and system samples, runs that failed, timed out
and crashed, a running one still being written to, and one to rename, tag and delete.
Written through the real services into a real SQLite file, as ``demo.py`` does."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

import msgspec

from dashboard.demo import stamp, write_metrics
from whirr.project import Project, init_project
from whirr.services.jobs import Jobs
from whirr.services.management import Management
from whirr.services.runs import Runs
from whirr.services.workers import Workers

WORKER = "box-1"
#: The last lines of the failed job's output (the banner shows them).
TRACEBACK = [
    "Traceback (most recent call last):",
    '  File "train.py", line 12, in <module>',
    "    main()",
    "ValueError: unknown flag --batch_size",
]
LIVE_ROWS = 101


def ordered_rows(count: int) -> list[dict[str, Any]]:
    """Rows logged in the order a training loop logs them: not alphabetical."""
    rows = []
    for i in range(count):
        row: dict[str, Any] = {
            "epoch": i // 10,
            "train/loss": 2.0 / (i + 1),
            "train/acc": i / count,
            "global_step": i * 32,
        }
        if i % 5 == 0:
            row["val/loss"] = 2.2 / (i + 1)
        if i >= 3:
            row["lr"] = 0.1 * 0.99**i
        rows.append(row)
    return rows


def write_system(path: Path, samples: int) -> None:
    """A busy CPU (99.9-100 %), a process growing a little, memory that never changes."""
    from datetime import UTC, datetime, timedelta

    t0 = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
    with path.open("ab") as fh:
        for i in range(samples):
            row = {
                "_timestamp": stamp(t0 + timedelta(seconds=5 * i)),
                "cpu_percent": 99.9 + (i % 2) * 0.1,
                "process_rss_gb": 0.5 + i * 0.001,
                "memory_total_gb": 64.0,
            }
            fh.write(msgspec.json.encode(row) + b"\n")


def build(root: Path) -> dict[str, Any]:
    """The project under ``root``; the run ids the tests open."""
    project, _ = init_project(root)
    store = project.open_store()
    try:
        return _fill(project, store)
    finally:
        store.close()


def _job_run(
    project: Project, jobs: Jobs, runs: Runs, name: str, output: str
) -> tuple[int, str, int, Path]:
    job = jobs.submit([sys.executable, "train.py"], str(project.root), name=name, check=False)
    claimed = jobs.claim(WORKER, 3600)
    assert claimed is not None and claimed.id == job.id
    run_dir = project.run_dir(job.run_id)
    run_dir.mkdir(parents=True, exist_ok=True)
    jobs.started(job.id, WORKER, claimed.attempt, os.getpid(), run_dir=str(run_dir), hostname="h")
    runs.start(job.run_id, str(run_dir), name=name, job_id=job.id)
    (run_dir / "output.log").write_text(output)
    return job.id, job.run_id, claimed.attempt, run_dir


def _fill(project: Project, store: Any) -> dict[str, Any]:
    jobs, runs = Jobs(store), Runs(store, hostname="h")
    Workers(store).register(WORKER, "h", pid=os.getpid(), gpu_ids=[])
    ids: dict[str, Any] = {}

    ordered = "local-20240501-120000-order1"
    run_dir = project.run_dir(ordered)
    run_dir.mkdir(parents=True)
    runs.start(ordered, str(run_dir), name="ordered keys")
    write_metrics(run_dir / "metrics.jsonl", ordered_rows(60))
    write_system(run_dir / "system.jsonl", 40)
    runs.update_summary(ordered, {"best": 0.1})
    runs.finish(ordered, "completed", exit_code=0)
    ids["ordered"] = ordered

    body = "".join(f"step {i}\n" for i in range(40)) + "\n".join(TRACEBACK) + "\n"
    job_id, run_id, attempt, run_dir = _job_run(project, jobs, runs, "bad-flags", body)
    write_metrics(run_dir / "metrics.jsonl", [{"step": 0, "loss": 1.0}])
    runs.finish(run_id, "failed", exit_code=3)
    jobs.finish(job_id, WORKER, attempt, 3, error="exited with code 3")
    ids["failed"] = run_id

    job_id, run_id, attempt, _ = _job_run(project, jobs, runs, "too-slow", "epoch 1\nepoch 2\n")
    # Its directory passed the worker's warning size (--warn-run-dir-size) on the way.
    Management(store).size_warning(run_id, 11 * 2**30, 10 * 2**30)
    runs.finish(run_id, "timed_out", error="timed out after 60s")
    jobs.finish(job_id, WORKER, attempt, None, error="timed out after 60s", outcome="timed_out")
    ids["timed_out"] = run_id

    crashed = "local-20240501-120000-crash1"
    run_dir = project.run_dir(crashed)
    run_dir.mkdir(parents=True)
    runs.start(crashed, str(run_dir), name="notebook crash")
    runs.finish(crashed, "crashed", error="the process died (SIGKILL)")
    ids["crashed"] = crashed

    job_id, run_id, _, run_dir = _job_run(project, jobs, runs, "live", "starting\n")
    write_metrics(run_dir / "metrics.jsonl", ordered_rows(LIVE_ROWS))
    ids["live"], ids["live_dir"] = run_id, run_dir

    for n in (1, 2):
        managed = f"local-20240501-120000-manag{n}"
        run_dir = project.run_dir(managed)
        run_dir.mkdir(parents=True)
        runs.start(managed, str(run_dir), name=f"to manage {n}", tags=["keep", "old"])
        write_metrics(run_dir / "metrics.jsonl", ordered_rows(5))
        runs.finish(managed, "completed", exit_code=0)
        ids[f"managed{n}"] = managed
    return ids
