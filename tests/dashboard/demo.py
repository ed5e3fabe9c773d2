"""A project that looks like a real one, for the dashboard's tests, benchmark and
screenshots: a worker running a sweep, jobs queued, failed, cancelled and completed, and
runs with metrics, system samples, logs, git info and artifacts. Everything goes through
the real services into a real SQLite file; run files are written as whirr writes them."""

from __future__ import annotations

import math
import os
import random
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import msgspec

from whirr.project import Project, init_project
from whirr.services.jobs import Jobs
from whirr.services.runs import Runs
from whirr.services.workers import Workers

_json = msgspec.json.Encoder()
WORKER = "gpu-box-1"
GIT = {
    "commit": "8f2c1d4e9b7a6c5d4e3f2a1b0c9d8e7f6a5b4c3d",
    "short_hash": "8f2c1d4",
    "branch": "main",
    "dirty": False,
    "remote": "git@github.com:lab/resnet-sweeps.git",
}

OOM_TRACEBACK = """Traceback (most recent call last):
  File "train.py", line 88, in <module>
    main(args)
  File "train.py", line 61, in main
    loss = model(x).cross_entropy(y)
torch.OutOfMemoryError: CUDA out of memory. Tried to allocate 2.00 GiB (GPU 0; 23.65 GiB total)
"""


def stamp(at: datetime) -> str:
    """The ``_timestamp`` format of metrics.jsonl."""
    return at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def write_metrics(
    path: Path, rows: list[dict[str, Any]], start_idx: int = 0, start: datetime | None = None
) -> None:
    """Append rows to a metrics.jsonl as the tracking library writes them."""
    t0 = start or datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
    with path.open("ab") as fh:
        for i, row in enumerate(rows, start_idx):
            line = {"_idx": i, "_timestamp": stamp(t0 + timedelta(seconds=i)), **row}
            fh.write(_json.encode(line) + b"\n")


def curve(steps: int, lr: float, seed: int) -> list[dict[str, Any]]:
    """A plausible training curve: loss falling with noise, accuracy rising."""
    rng = random.Random(seed)
    rows = []
    for step in range(steps):
        progress = step / max(1, steps - 1)
        loss = 2.3 * math.exp(-4 * progress * min(1.0, lr * 20)) + 0.08 + rng.gauss(0, 0.03)
        row: dict[str, Any] = {
            "step": step * 10,
            "train/loss": round(loss, 5),
            "train/acc": round(min(0.99, 1 - loss / 2.6), 5),
        }
        if step % 5 == 0:
            row["val/loss"] = round(loss * 1.08 + rng.gauss(0, 0.02), 5)
        rows.append(row)
    return rows


def write_system(path: Path, samples: int) -> None:
    """system.jsonl samples of one GPU machine."""
    t0 = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
    with path.open("ab") as fh:
        for i in range(samples):
            row = {
                "_timestamp": stamp(t0 + timedelta(seconds=10 * i)),
                "cpu_percent": 35 + 20 * math.sin(i / 7),
                "memory_used_gb": 11.5 + i * 0.01,
                "memory_total_gb": 64.0,
                "gpu_util": 88 + 8 * math.sin(i / 3),
                "gpu_mem_used_gb": 18.2,
                "gpu_mem_total_gb": 24.0,
                "gpu_name": "RTX 4090",
            }
            fh.write(_json.encode(row) + b"\n")


def build(root: Path, sweep: int = 6, steps: int = 300) -> dict[str, Any]:
    """Create the demo project under ``root``; returns the ids tests look for."""
    project, _ = init_project(root)
    store = project.open_store()
    try:
        return _fill(project, store, sweep, steps)
    finally:
        store.close()


def _fill(project: Project, store: Any, sweep: int, steps: int) -> dict[str, Any]:
    jobs, runs, workers = Jobs(store), Runs(store, hostname="gpu-box-1"), Workers(store)
    workdir = str(project.root)
    python = sys.executable
    workers.register(WORKER, "gpu-box-1", pid=os.getpid(), gpu_ids=[0])
    ids: dict[str, Any] = {"runs": [], "jobs": {}}
    lrs = [0.001, 0.003, 0.01, 0.03, 0.1, 0.3]
    for i in range(sweep):
        lr, depth = lrs[i % len(lrs)], [18, 34, 50][i % 3]
        config = {
            "lr": lr,
            "depth": depth,
            "optimizer": "adamw" if i % 2 else "sgd",
            "batch_size": 128,
            "data": {"augment": i % 2 == 0},
        }
        job = jobs.submit(
            [python, "train.py", "--lr", str(lr), "--depth", str(depth)],
            workdir,
            name=f"resnet-sweep-{i}",
            config=config,
            tags=["sweep:resnet", "cifar10"],
            check=False,
        )
        claimed = jobs.claim(WORKER, 3600)
        assert claimed is not None and claimed.id == job.id
        run_dir = project.run_dir(job.run_id)
        run_dir.mkdir(parents=True, exist_ok=True)
        jobs.started(
            job.id, WORKER, claimed.attempt, os.getpid(), run_dir=str(run_dir), hostname="gpu-box-1"
        )
        runs.start(
            job.run_id,
            str(run_dir),
            name=job.name,
            job_id=job.id,
            config=config,
            tags=job.tags,
            git=GIT,
        )
        last = i == sweep - 1
        rows = curve(steps // 3 if last else steps, lr, seed=i)
        write_metrics(run_dir / "metrics.jsonl", rows)
        write_system(run_dir / "system.jsonl", 40)
        (run_dir / "output.log").write_text(
            "".join(f"epoch {e}: loss={r['train/loss']:.4f}\n" for e, r in enumerate(rows[::30]))
        )
        ids["runs"].append(job.run_id)
        if last:
            ids["running_job"], ids["running_run"] = job.id, job.run_id
            continue
        (run_dir / "artifacts").mkdir(exist_ok=True)
        (run_dir / "artifacts" / "model.pt").write_bytes(b"\x00weights" * 1000)
        runs.artifact_saved(job.run_id, "model.pt", 8000)
        final = rows[-1]
        runs.update_summary(
            job.run_id,
            {
                "best_val_loss": round(final["train/loss"] * 1.05, 4),
                "final_acc": final["train/acc"],
            },
        )
        failed = i == 3
        if failed:  # what a run that ran out of GPU memory prints last
            with (run_dir / "output.log").open("a") as fh:
                fh.write(OOM_TRACEBACK)
        runs.finish(job.run_id, "failed" if failed else "completed", exit_code=1 if failed else 0)
        jobs.finish(
            job.id,
            WORKER,
            claimed.attempt,
            1 if failed else 0,
            error="CUDA out of memory" if failed else None,
        )
        ids["jobs"]["failed" if failed else "completed"] = job.id
    queued = [
        jobs.submit(
            [python, "eval.py", "--split", s], workdir, name=f"eval-{s}", tags=["eval"], check=False
        )
        for s in ("val", "test", "ood")
    ]
    ids["queued_jobs"] = [j.id for j in queued]
    doomed = jobs.submit([python, "ablate.py"], workdir, name="ablation-no-aug", check=False)
    jobs.cancel(doomed.id)
    ids["jobs"]["cancelled"] = doomed.id
    # A direct run (no job): tracked from a notebook.
    local_id = "local-20240501-120000-a1b2c3"
    local_dir = project.run_dir(local_id)
    local_dir.mkdir(parents=True)
    runs.start(
        local_id,
        str(local_dir),
        name="notebook <b>probe</b>",
        config={"lr": 0.05},
        tags=["notebook"],
    )
    write_metrics(local_dir / "metrics.jsonl", curve(50, 0.05, seed=99))
    runs.finish(local_id, "completed", exit_code=0)
    ids["runs"].append(local_id)
    ids["local_run"] = local_id
    return ids
