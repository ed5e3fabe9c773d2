"""CLI start-up through the seam against a baseline tree (issue 15: within 1.05x).

Times `whirr status --json`, `runs --json` and `submit` on a project of 1,000 finished jobs,
once with this checkout's code and once with another checkout's (a git worktree of the
commit to compare with), alternating the two so both see the same machine load. Prints
medians of wall and CPU time and the ratio this/baseline.

    git worktree add /tmp/whirr-base <commit>
    .venv/bin/python tools/bench/seam.py --baseline /tmp/whirr-base
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parents[2]
COMMANDS = [
    ["status", "--json"],
    ["status", "--all", "--json"],
    ["runs", "--json"],
    ["submit", "--", "true"],
]


def make_project(root: Path, jobs: int) -> None:
    """A project with ``jobs`` finished jobs and their runs, written with this code."""
    from whirr.project import init_project
    from whirr.services import Jobs
    from whirr.services.runs import Runs

    project, _ = init_project(root)
    store = project.open_store()
    try:
        service, runs = Jobs(store), Runs(store, hostname="bench")
        for i in range(jobs):
            job = service.submit(["true"], str(root), name=f"j{i}", check=False)
            assert service.claim("w", 60) is not None
            run_dir = str(project.run_dir(job.run_id))
            service.started(job.id, "w", 1, 1, run_dir=run_dir, hostname="bench")
            runs.update_summary(job.run_id, {"loss": 1.0 / (i + 1)})
            service.finish(job.id, "w", 1, 0)
    finally:
        store.close()


def timed(tree: Path, argv: list[str], cwd: Path) -> tuple[float, float]:
    env = {**os.environ, "PYTHONPATH": str(tree)}
    env.pop("WHIRR_SERVER_URL", None)
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    subprocess.run(
        [sys.executable, "-m", "whirr.cli.main", *argv],
        cwd=cwd,
        env=env,
        check=True,
        stdout=subprocess.DEVNULL,
    )
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return wall, cpu


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--baseline", type=Path, required=True, help="checkout to compare with")
    parser.add_argument("--jobs", type=int, default=1000)
    parser.add_argument("--repeat", type=int, default=15)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        make_project(root, args.jobs)
        print(f"{args.jobs} finished jobs; medians of {args.repeat} alternating runs")
        print(f"{'command':<24} {'this wall':>10} {'base wall':>10} {'ratio':>6}  cpu ratio")
        for argv in COMMANDS:
            mine: list[tuple[float, float]] = []
            base: list[tuple[float, float]] = []
            timed(HERE, argv, root), timed(args.baseline, argv, root)  # warm the caches
            for _ in range(args.repeat):
                mine.append(timed(HERE, argv, root))
                base.append(timed(args.baseline, argv, root))
            mw, bw = (statistics.median(w for w, _ in xs) for xs in (mine, base))
            mc, bc = (statistics.median(c for _, c in xs) for xs in (mine, base))
            print(
                f"{' '.join(argv):<24} {mw * 1000:>8.1f}ms {bw * 1000:>8.1f}ms "
                f"{mw / bw:>6.3f}  {mc / bc:.3f}"
            )


if __name__ == "__main__":
    main()
