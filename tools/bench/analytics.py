"""Benchmark of whirr's analytics commands against a bare DuckDB ``read_json``.

Creates a project with 50 runs of 20,000 steps (loss, acc) and 2,000 small runs, then
prints the median wall time of each command (a fresh ``whirr`` process each time, as a
user runs it) next to the reference measured in the same run: a fresh ``python -c "import
duckdb; ... read_json(<the same files>)"`` process. Each is also given as CPU time (user +
system of the process, all its threads): on a shared, loaded machine wall times wander,
CPU times much less.

    .venv/bin/python tools/bench/analytics.py [--repeat 5] [--dir DIR] [--reuse]
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import msgspec

from whirr.events import Pending, RunFinished, RunStarted, RunSummaryUpdated, run_stream
from whirr.project import Project, init_project

BIG_RUNS, BIG_STEPS, SMALL_RUNS, SMALL_STEPS = 50, 20_000, 2_000, 20
WHIRR = [sys.executable, "-m", "whirr.cli.main"]
T0 = datetime(2024, 1, 1, tzinfo=UTC)


def build(project: Project) -> list[str]:
    """Record the runs and write their metrics; returns the big runs' ids."""
    enc = msgspec.json.Encoder()
    ids = [f"big-{i:02d}" for i in range(BIG_RUNS)] + [f"small-{i:04d}" for i in range(SMALL_RUNS)]
    store = project.open_store()
    try:
        for start in range(0, len(ids), 500):
            events: list[Pending] = []
            for n, run_id in enumerate(ids[start : start + 500], start):
                config = {"lr": 10 ** -(1 + n % 4), "bs": 32 * (1 + n % 3), "seed": n}
                events += [
                    Pending(
                        run_stream(run_id),
                        RunStarted(
                            run_id=run_id,
                            run_dir=str(project.run_dir(run_id)),
                            name=f"run {n}",
                            config=config,
                            tags=["bench"],
                        ),
                    ),
                    Pending(
                        run_stream(run_id),
                        RunSummaryUpdated(run_id=run_id, summary={"best_loss": 1 / (n + 1)}),
                    ),
                    Pending(run_stream(run_id), RunFinished(run_id=run_id, status="completed")),
                ]
            store.append(events)
    finally:
        store.close()
    for n, run_id in enumerate(ids):
        steps = BIG_STEPS if run_id.startswith("big") else SMALL_STEPS
        run_dir = project.run_dir(run_id)
        run_dir.mkdir(parents=True, exist_ok=True)
        lines = bytearray()
        for i in range(steps):
            ts = (T0 + timedelta(seconds=i)).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
            row = {
                "_idx": i,
                "_timestamp": ts,
                "step": i,
                "loss": 1 / (i + 1 + n),
                "acc": i / (steps + n),
            }
            lines += enc.encode(row) + b"\n"
        (run_dir / "metrics.jsonl").write_bytes(lines)
    return ids[:BIG_RUNS]


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def timed(argv: list[str], cwd: Path, repeat: int, before: object = None) -> tuple[float, float]:
    """Median wall and median CPU seconds of ``repeat`` fresh processes (``before()`` runs
    ahead of each, outside the timing)."""
    walls, cpus = [], []
    for _ in range(repeat):
        if callable(before):
            before()
        cpu, start = _children_cpu(), time.perf_counter()
        subprocess.run(
            argv, cwd=cwd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        walls.append(time.perf_counter() - start)
        cpus.append(_children_cpu() - cpu)
    return statistics.median(walls), statistics.median(cpus)


def bare(files: list[Path] | str, what: str) -> list[str]:
    """A fresh Python reading ``files`` (or a glob) with DuckDB's default ``read_json``."""
    listing = repr(files) if isinstance(files, str) else repr([str(f) for f in files])
    code = f'import duckdb; duckdb.sql("SELECT {what} FROM read_json({listing})").fetchall()'
    return [sys.executable, "-c", code]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--dir", type=Path, help="where to build the project (default: tmp)")
    parser.add_argument(
        "--reuse", action="store_true", help="use the project an earlier run left in --dir as it is"
    )
    parser.add_argument("--only", help="only the commands whose label contains this text")
    args = parser.parse_args()
    root = args.dir or Path(tempfile.mkdtemp(prefix="whirr-bench-"))
    if args.reuse and (root / "proj").is_dir():
        project = Project(root / "proj")
        big = [f"big-{i:02d}" for i in range(BIG_RUNS)]
        print(f"reusing {project.root}\n")
    else:
        project, _ = init_project(root / "proj")
        t = time.perf_counter()
        big = build(project)
        print(
            f"built {BIG_RUNS} x {BIG_STEPS} + {SMALL_RUNS} x {SMALL_STEPS} steps "
            f"in {time.perf_counter() - t:.1f}s at {project.root}\n"
        )
    cwd, r = project.root, args.repeat
    cache = project.dir / "cache"
    drop_cache = lambda: shutil.rmtree(cache, ignore_errors=True)  # noqa: E731
    files = lambda ids: [project.run_dir(i) / "metrics.jsonl" for i in ids]  # noqa: E731
    every_file = str(project.runs_dir / "*" / "metrics.jsonl")
    startup = timed([sys.executable, "-c", "pass"], cwd, r)
    ref_import = timed([sys.executable, "-c", "import duckdb"], cwd, r)
    ten = big[:10]
    whirr = lambda *a, **k: lambda: timed([*WHIRR, *a], cwd, **k)  # noqa: E731
    ref = lambda what, **k: lambda: timed(bare(*what), cwd, **k)  # noqa: E731
    half = max(1, r // 2)
    cases = [
        (
            "compare 10 runs -m loss (cold: no cache)",
            whirr("compare", *ten, "-m", "loss", repeat=r, before=drop_cache),
            ref((files(ten), "min(loss)"), repeat=r),
        ),
        (
            "compare 10 runs -m loss (Parquet cache)",
            whirr("compare", *ten, "-m", "loss", repeat=r),
            ref((files(ten), "min(loss)"), repeat=r),
        ),
        (
            "export 1 run --metrics -> CSV (cold)",
            whirr("export", big[0], "--metrics", "-o", "one.csv", repeat=r, before=drop_cache),
            ref((files(big[:1]), "*"), repeat=r),
        ),
        (
            "export 1 run --metrics -> CSV (cache)",
            whirr("export", big[0], "--metrics", "-o", "one.csv", repeat=r),
            ref((files(big[:1]), "*"), repeat=r),
        ),
        (
            "export all runs -> Parquet",
            whirr("export", "-o", "runs.parquet", repeat=r),
            lambda: ref_import,
        ),
        (
            "export all runs --metrics -> Parquet (cold)",
            whirr("export", "--metrics", "-o", "all.parquet", repeat=half, before=drop_cache),
            ref((every_file, "count(*)"), repeat=half),
        ),
        (
            "export all runs --metrics -> Parquet (cache)",
            whirr("export", "--metrics", "-o", "all.parquet", repeat=r),
            ref((every_file, "count(*)"), repeat=half),
        ),
        ("runs -n 5000 (all 2,050 runs)", whirr("runs", "-n", "5000", repeat=r), None),
        (
            "runs --where 'config.lr < 0.01' --sort summary.best_loss -n 5000",
            whirr(
                "runs",
                "--where",
                "config.lr < 0.01",
                "--sort",
                "summary.best_loss",
                "-n",
                "5000",
                repeat=r,
            ),
            lambda: ref_import,
        ),
    ]
    print(
        f"interpreter start-up: {startup[0] * 1000:.0f} ms; python -c 'import duckdb': "
        f"{ref_import[0] * 1000:.0f} ms (medians of {r}; wall/CPU)\n"
    )
    print("limit: 2 x the reference + interpreter start-up (wall)\n")
    print(f"{'command':<66} {'whirr':>15} {'bare duckdb':>15} {'ratio':>11} {'limit':>8}")
    ms = lambda t: f"{t[0] * 1000:.0f}/{t[1] * 1000:.0f} ms"  # noqa: E731
    for label, ours_fn, ref_fn in cases:
        if args.only and args.only not in label:
            continue
        ours = ours_fn()
        base = ref_fn() if ref_fn else None
        if base is None:
            print(f"{label:<66} {ms(ours):>15} {'-':>15} {'-':>11} {'-':>8}", flush=True)
            continue
        ratio = f"{ours[0] / base[0]:.2f}/{ours[1] / base[1]:.2f}"
        limit = 2 * base[0] + startup[0]
        verdict = f"{limit * 1000:.0f}" + (" ok" if ours[0] <= limit else " MISS")
        print(f"{label:<66} {ms(ours):>15} {ms(base):>15} {ratio:>11} {verdict:>8}", flush=True)
    print("\nload average (1, 5, 15 min):", " ".join(f"{x:.2f}" for x in os.getloadavg()))
    if args.dir is None:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
