"""Queue benchmark (issue 2): CLI start-up, submit, wake-up latency, throughput, per-job
overhead, status with 10,000 jobs, rebuild of 100,000 events, idle worker memory.

Prints medians, each beside a reference measured in the same run (bare interpreter
start-up, a bare fork+exec of `true`), since this machine is noisy. Run: make bench.
"""

from __future__ import annotations

import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from whirr.events import JobFinished, JobStarted, JobSubmitted
from whirr.project import Project, init_project
from whirr.services import Jobs

PY = sys.executable
# The console script, as users run it (``python -m whirr.cli.main`` also imports runpy).
_SCRIPT = Path(PY).with_name("whirr")
WHIRR = [str(_SCRIPT)] if _SCRIPT.exists() else [PY, "-m", "whirr.cli.main"]
FAST_CONFIG = "heartbeat_interval: 5\nheartbeat_timeout: 30\nkill_grace_period: 1\n"


def timed(argv: list[str], cwd: Path, repeat: int) -> tuple[float, float]:
    """Median wall seconds and median CPU seconds (user + system) of running ``argv``.

    CPU time is reported too because wall time on a shared, loaded machine mostly
    measures the other processes."""
    walls, cpus = [], []
    for _ in range(repeat):
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        start = time.perf_counter()
        subprocess.run(argv, cwd=cwd, check=True, stdout=subprocess.DEVNULL)
        walls.append(time.perf_counter() - start)
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpus.append(after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime)
    return statistics.median(walls), statistics.median(cpus)


def fmt(measured: tuple[float, float]) -> str:
    wall, cpu = measured
    return f"{wall * 1000:.0f} ms ({cpu * 1000:.0f} ms CPU)"


def new_project(root: Path, name: str) -> Project:
    project, _ = init_project(root / name)
    project.config_path.write_text(FAST_CONFIG)
    return project


def start_worker(project: Project, *args: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [*WHIRR, "worker", "-q", *args],
        cwd=project.root,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def wait_all_done(store, count: int, timeout: float = 300) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        counts = store.job_counts()
        if sum(counts.get(s, 0) for s in ("completed", "failed", "cancelled")) >= count:
            return
        store.wait(store.head(), 0.5)
    raise RuntimeError("jobs did not finish")


def event_times(store, kind: type) -> dict[int, float]:
    return {
        r.event.job_id: r.recorded_at.timestamp() for r in store.read() if isinstance(r.event, kind)
    }


def bench_latency(root: Path, samples: int = 25) -> float:
    project = new_project(root, "latency")
    store = project.open_store()
    worker = start_worker(project)
    try:
        while not store.workers():
            time.sleep(0.05)
        time.sleep(0.3)
        jobs = Jobs(store)
        for _ in range(samples):
            job = jobs.submit(["true"], str(project.root))
            wait_all_done(store, job.id)
            time.sleep(0.05)  # let the worker go idle again
        submitted, started = event_times(store, JobSubmitted), event_times(store, JobStarted)
        return statistics.median(started[i] - submitted[i] for i in submitted)
    finally:
        worker.terminate()
        worker.wait()
        store.close()


def bench_throughput(root: Path, run: int = 0, count: int = 600, workers: int = 2) -> float:
    project = new_project(root, f"throughput-{run}")
    store = project.open_store()
    jobs = Jobs(store)
    for _ in range(count):
        jobs.submit(["true"], str(project.root), check=False)
    procs = [start_worker(project, "--exit-when-empty") for _ in range(workers)]
    for p in procs:
        p.wait()
    started, finished = event_times(store, JobStarted), event_times(store, JobFinished)
    store.close()
    return count / (max(finished.values()) - min(started.values()))


def bench_overhead(root: Path, count: int = 20, sleep: float = 0.1) -> float:
    project = new_project(root, "overhead")
    store = project.open_store()
    jobs = Jobs(store)
    for _ in range(count):
        jobs.submit(["sleep", str(sleep)], str(project.root))
    start_worker(project, "--exit-when-empty").wait()
    started, finished = event_times(store, JobStarted), event_times(store, JobFinished)
    store.close()
    return (max(finished.values()) - min(started.values())) / count - sleep


def bare_spawn_overhead(count: int = 20, sleep: float = 0.1) -> float:
    start = time.perf_counter()
    for _ in range(count):
        subprocess.run(["sleep", str(sleep)], check=True)
    return (time.perf_counter() - start) / count - sleep


def bench_status(root: Path, total: int = 10_000) -> tuple[float, float]:
    project = new_project(root, "status")
    store = project.open_store()
    jobs = Jobs(store)
    for i in range(total):
        job = jobs.submit(["true"], "/", check=False)
        if i < total - 100:
            jobs.cancel(job.id)
    store.close()
    return timed([*WHIRR, "status"], project.root, 7)


def bench_rebuild(root: Path, events: int = 100_000) -> tuple[tuple[float, float], int]:
    project = new_project(root, "rebuild")
    store = project.open_store()
    jobs = Jobs(store)
    while store.head() < events:
        job = jobs.submit(["true"], "/", check=False)
        claimed = jobs.claim("w", 60)
        assert claimed is not None
        jobs.started(job.id, "w", 1, 1, run_dir="/r", hostname="h")
        jobs.finish(job.id, "w", 1, 0)
    head = store.head()
    walls, cpus = [], []
    for _ in range(3):
        start, cpu = time.perf_counter(), time.process_time()
        store.rebuild()
        walls.append(time.perf_counter() - start)
        cpus.append(time.process_time() - cpu)
    store.close()
    return (statistics.median(walls), statistics.median(cpus)), head


def idle_worker_rss_mb(root: Path) -> float:
    project = new_project(root, "rss")
    worker = start_worker(project)
    time.sleep(2.0)
    try:
        status = Path(f"/proc/{worker.pid}/status").read_text()
        kb = int(next(line for line in status.splitlines() if line.startswith("VmRSS")).split()[1])
        return kb / 1024
    finally:
        worker.terminate()
        worker.wait()


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        py_start = timed([PY, "-c", "pass"], root, 15)
        # The imports every command needs, with the collector off as the CLI has it.
        floor_imports = "import gc; gc.disable(); import click, msgspec.json, apsw, pathlib"
        floor = timed([PY, "-c", floor_imports], root, 15)
        proj = new_project(root, "cli")
        rows = [
            ("python -c pass (reference)", fmt(py_start), ""),
            ("import click, msgspec, apsw (floor)", fmt(floor), "what any command imports"),
            (
                "whirr --help",
                fmt(timed([*WHIRR, "--help"], root, 15)),
                "target < 100 ms; original 350 ms",
            ),
            (
                "whirr submit",
                fmt(timed([*WHIRR, "submit", "true"], proj.root, 15)),
                "target < 100 ms; original 310 ms",
            ),
        ]
        rows.append(
            (
                "submit-to-start, idle worker (median)",
                f"{bench_latency(root) * 1000:.1f} ms",
                "target < 50 ms; original 4.4 s",
            )
        )
        rows.append(
            (
                "jobs/s, 2 workers, `true`",
                f"{statistics.median(bench_throughput(root, run) for run in range(3)):.0f}/s",
                "target >= 200/s; original 70-100/s",
            )
        )
        rows.append(
            (
                "bare fork+exec of `sleep 0.1` (reference)",
                f"{bare_spawn_overhead() * 1000:.1f} ms",
                "",
            )
        )
        rows.append(
            (
                "overhead per job, 20 x `sleep 0.1`",
                f"{bench_overhead(root) * 1000:.1f} ms",
                "target < 10 ms; original 450 ms",
            )
        )
        rows.append(("whirr status, 10,000 jobs", fmt(bench_status(root)), "target < 150 ms"))
        (wall, cpu), count = bench_rebuild(root)
        figure = f"{wall:.2f} s ({cpu:.2f} s CPU)"
        rows.append((f"rebuild, {count:,} events", figure, "target < 3 s"))
        rows.append(
            (
                "idle worker RSS",
                f"{idle_worker_rss_mb(root):.1f} MB",
                "target < 30 MB; original 40 MB",
            )
        )
    print(f"{' '.join(WHIRR)} on Python {sys.version.split()[0]} ({PY}); load {_load()}")
    width = max(len(r[0]) for r in rows)
    for name, value, note in rows:
        print(f"{name:<{width}}  {value:>24}  {note}")


def _load() -> str:
    return " ".join(f"{x:.1f}" for x in os.getloadavg())


if __name__ == "__main__":
    os.environ.setdefault("PYTHONDONTWRITEBYTECODE", "0")
    main()
