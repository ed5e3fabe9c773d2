"""Scheduling benchmark (issue 8): GPU utilisation a real worker achieves on 4 FAKE GPUs
(``WHIRR_FAKE_GPUS=4``, the testing hook of ``whirr.gpus``) for a fixed mixed workload of
sleeps, against the ideal packing computed offline.

Utilisation = busy GPU-seconds / (4 GPUs x makespan), makespan from the first start to the
last end as the log recorded them. The ideal makespan is bounded below by
max(total GPU-seconds / 4, longest job); the offline reference is the best of a few list
schedules that know every duration in advance (longest first, widest first, as given).
Run: .venv/bin/python tools/bench/scheduling.py [--repeat 3]
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

from whirr.events import JobFinished, JobStarted
from whirr.project import init_project
from whirr.services import Jobs

GPUS = 4
PY = sys.executable


def workload(seed: int = 8) -> list[tuple[int, float]]:
    """(GPUs, seconds) per job: mostly 1-GPU jobs, some 2-GPU, two 4-GPU, a few CPU-only."""
    rng = random.Random(seed)
    jobs = []
    for _ in range(36):
        gpus = rng.choice([1, 1, 1, 1, 2, 2, 0])
        jobs.append((gpus, round(rng.uniform(0.6, 2.4), 1)))
    jobs.insert(10, (4, 1.5))
    jobs.insert(25, (4, 1.0))
    return jobs


def list_schedule(jobs: list[tuple[int, float]]) -> float:
    """Makespan of a greedy list schedule on GPUS devices that knows the durations: each
    job in order starts as soon as enough GPUs are free (CPU-only jobs are free)."""
    free_at = [0.0] * GPUS
    end = 0.0
    for gpus, seconds in jobs:
        if gpus == 0:
            end = max(end, seconds)
            continue
        free_at.sort()
        start = free_at[gpus - 1]  # the moment the gpus-th device frees
        for i in range(gpus):
            free_at[i] = start + seconds
        end = max(end, start + seconds)
    return end


def ideal(jobs: list[tuple[int, float]]) -> tuple[float, float]:
    """(lower bound on the makespan, best offline list schedule)."""
    work = sum(g * s for g, s in jobs)
    bound = max(work / GPUS, max(s for g, s in jobs if g))
    orders = [
        jobs,
        sorted(jobs, key=lambda j: -j[1]),
        sorted(jobs, key=lambda j: (-j[0], -j[1])),
        sorted(jobs, key=lambda j: -j[0] * j[1]),
    ]
    return bound, min(list_schedule(o) for o in orders)


def run_once(jobs: list[tuple[int, float]]) -> dict[str, float]:
    """Run the workload on a real worker; returns utilisation and makespan."""
    with tempfile.TemporaryDirectory() as tmp:
        project, _ = init_project(Path(tmp) / "bench")
        project.config_path.write_text("heartbeat_interval: 5\nheartbeat_timeout: 30\n")
        store = project.open_store()
        service = Jobs(store)
        for gpus, seconds in jobs:
            service.submit(["sleep", str(seconds)], str(project.root), gpus=gpus)
        env = {**os.environ, "WHIRR_FAKE_GPUS": str(GPUS)}
        worker = subprocess.Popen(
            [
                PY,
                "-m",
                "whirr.cli.main",
                "worker",
                "-q",
                "--gpus",
                "all",
                "--slots",
                "4",
                "--exit-when-empty",
            ],
            cwd=project.root,
            env=env,
        )
        if worker.wait(timeout=600) != 0:
            raise RuntimeError("worker failed")
        starts, ends = {}, {}
        for rec in store.read(types=["job.started", "job.finished"]):
            at = rec.recorded_at.timestamp()
            if isinstance(rec.event, JobStarted):
                starts[rec.event.job_id] = at
            elif isinstance(rec.event, JobFinished):
                ends[rec.event.job_id] = at
        gpus_of = {i + 1: g for i, (g, _) in enumerate(jobs)}
        store.close()
    busy = sum(gpus_of[j] * (ends[j] - starts[j]) for j in starts)
    makespan = max(ends.values()) - min(starts.values())
    return {"utilisation": busy / (GPUS * makespan), "makespan": makespan}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    jobs = workload()
    work = sum(g * s for g, s in jobs)
    bound, offline = ideal(jobs)
    ideal_util = work / (GPUS * offline)
    print(f"workload: {len(jobs)} jobs, {work:.1f} GPU-seconds of sleeps on {GPUS} fake GPUs")
    print(
        f"ideal (offline, knows durations): makespan {offline:.2f}s "
        f"(lower bound {bound:.2f}s), utilisation {ideal_util:.1%}"
    )
    runs = [run_once(jobs) for _ in range(args.repeat)]
    util = statistics.median(r["utilisation"] for r in runs)
    span = statistics.median(r["makespan"] for r in runs)
    print(
        f"whirr worker --gpus all: makespan {span:.2f}s, utilisation {util:.1%} "
        f"(median of {args.repeat})"
    )
    print(f"achieved / ideal: {util / ideal_util:.1%} (target >= 90%)")


if __name__ == "__main__":
    main()
