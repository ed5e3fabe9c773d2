"""Benchmark of whirr's analytics commands against a bare DuckDB ``read_json``.

Creates a project with 50 runs of 20,000 steps (loss, acc) and 2,000 small runs, then
prints the median wall time of each command (a fresh ``whirr`` process each time, as a
user runs it) next to the reference measured in the same run: a fresh ``python -c "import
duckdb; ... read_json(<the same files>)"`` process.

    .venv/bin/python tools/bench/analytics.py [--repeat 5] [--dir DIR]
"""

from __future__ import annotations

import argparse
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
            for n, run_id in enumerate(ids[start:start + 500], start):
                config = {"lr": 10 ** -(1 + n % 4), "bs": 32 * (1 + n % 3), "seed": n}
                events += [
                    Pending(run_stream(run_id), RunStarted(
                        run_id=run_id, run_dir=str(project.run_dir(run_id)),
                        name=f"run {n}", config=config, tags=["bench"])),
                    Pending(run_stream(run_id), RunSummaryUpdated(
                        run_id=run_id, summary={"best_loss": 1 / (n + 1)})),
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
            row = {"_idx": i, "_timestamp": ts, "step": i,
                   "loss": 1 / (i + 1 + n), "acc": i / (steps + n)}
            lines += enc.encode(row) + b"\n"
        (run_dir / "metrics.jsonl").write_bytes(lines)
    return ids[:BIG_RUNS]


def timed(argv: list[str], cwd: Path, repeat: int, before: object = None) -> float:
    """Median seconds of ``repeat`` fresh processes (``before()`` runs ahead of each)."""
    times = []
    for _ in range(repeat):
        if callable(before):
            before()
        start = time.perf_counter()
        subprocess.run(argv, cwd=cwd, check=True, stdout=subprocess.DEVNULL,
                       stderr=subprocess.DEVNULL)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def bare(files: list[Path] | str, what: str) -> list[str]:
    """A fresh Python reading ``files`` (or a glob) with DuckDB's default ``read_json``."""
    listing = repr(files) if isinstance(files, str) else repr([str(f) for f in files])
    code = f"import duckdb; duckdb.sql(\"SELECT {what} FROM read_json({listing})\").fetchall()"
    return [sys.executable, "-c", code]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--dir", type=Path, help="where to build the project (default: tmp)")
    args = parser.parse_args()
    root = args.dir or Path(tempfile.mkdtemp(prefix="whirr-bench-"))
    project, _ = init_project(root / "proj")
    t = time.perf_counter()
    big = build(project)
    print(f"built {BIG_RUNS} x {BIG_STEPS} + {SMALL_RUNS} x {SMALL_STEPS} steps "
          f"in {time.perf_counter() - t:.1f}s at {project.root}\n")
    cwd, r = project.root, args.repeat
    cache = project.dir / "cache"
    drop_cache = lambda: shutil.rmtree(cache, ignore_errors=True)  # noqa: E731
    files = lambda ids: [project.run_dir(i) / "metrics.jsonl" for i in ids]  # noqa: E731
    every_file = str(project.runs_dir / "*" / "metrics.jsonl")
    startup = timed([sys.executable, "-c", "pass"], cwd, r)
    ref_import = timed([sys.executable, "-c", "import duckdb"], cwd, r)
    ten = big[:10]
    rows = [
        ("compare 10 runs -m loss (cold: no cache)",
         timed([*WHIRR, "compare", *ten, "-m", "loss"], cwd, r, drop_cache),
         timed(bare(files(ten), "min(loss)"), cwd, r)),
        ("compare 10 runs -m loss (Parquet cache)",
         timed([*WHIRR, "compare", *ten, "-m", "loss"], cwd, r),
         timed(bare(files(ten), "min(loss)"), cwd, r)),
        ("export 1 run --metrics -> CSV (cold)",
         timed([*WHIRR, "export", big[0], "--metrics", "-o", "one.csv"], cwd, r, drop_cache),
         timed(bare(files(big[:1]), "*"), cwd, r)),
        ("export 1 run --metrics -> CSV (cache)",
         timed([*WHIRR, "export", big[0], "--metrics", "-o", "one.csv"], cwd, r),
         timed(bare(files(big[:1]), "*"), cwd, r)),
        ("export all runs -> Parquet",
         timed([*WHIRR, "export", "-o", "runs.parquet"], cwd, r),
         ref_import),
        ("export all runs --metrics -> Parquet (cold)",
         timed([*WHIRR, "export", "--metrics", "-o", "all.parquet"], cwd, max(1, r // 2),
               drop_cache),
         timed(bare(every_file, "count(*)"), cwd, max(1, r // 2))),
        ("export all runs --metrics -> Parquet (cache)",
         timed([*WHIRR, "export", "--metrics", "-o", "all.parquet"], cwd, r),
         timed(bare(every_file, "count(*)"), cwd, max(1, r // 2))),
        ("runs -n 5000 (all 2,050 runs)",
         timed([*WHIRR, "runs", "-n", "5000"], cwd, r), None),
        ("runs --where 'config.lr < 0.01' --sort summary.best_loss -n 5000",
         timed([*WHIRR, "runs", "--where", "config.lr < 0.01", "--sort", "summary.best_loss",
                "-n", "5000"], cwd, r), ref_import),
    ]
    print(f"interpreter start-up: {startup * 1000:.0f} ms; python -c 'import duckdb': "
          f"{ref_import * 1000:.0f} ms (medians of {r})\n")
    print(f"{'command':<66} {'whirr':>8} {'bare duckdb':>12} {'ratio':>6}")
    for label, ours, ref in rows:
        ref_text = f"{ref * 1000:.0f} ms" if ref else "-"
        ratio = f"{ours / ref:.2f}" if ref else "-"
        print(f"{label:<66} {ours * 1000:>5.0f} ms {ref_text:>12} {ratio:>6}")
    if args.dir is None:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
