"""Reads that do not grow with history (issue 19, item 4): ``GET /status``, ``whirr status``
and ``GET /runs?tag=<unused>`` at 1,000 and at 100,000 jobs, and the ratio of the two.
Target: each within 1.5x of its cost at 1,000 jobs, on SQLite and on PostgreSQL.

For each size, a log is written straight through the store's batch append (per job: a
submit, claim, start, run start, run end and job end, 1,000 jobs per append; the newest
10 jobs left running and the 30 before them queued; 80 workers seen now and one restarted
worker id per 100 jobs registered 30 days ago, which listings forget). Then, with a real
``whirr server`` over that log:

- ``GET /status`` and ``GET /runs?tag=never-used`` (the server's answer time, over HTTP);
- ``whirr status`` in-process (the CLI command itself, run by click's test runner so that
  Python's start-up does not drown the query): on a SQLite project, and with ``--server``.

Each figure is the median of ``--repeat`` calls after a few warm-up calls; the sizes'
servers run side by side and are called in turn, so that the load of a shared machine
weighs on both alike. PostgreSQL needs
``--postgres URL`` (or ``WHIRR_TEST_POSTGRES_URL``); each size gets a schema of its own.

    .venv/bin/python tools/bench/status_reads.py [--sizes 1000 100000] [--repeat 60]
"""

from __future__ import annotations

import argparse
import functools
import os
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from datetime import datetime, timedelta
from pathlib import Path
from typing import Literal
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

# This directory holds a benchmark named queue.py, which would shadow the standard
# library's queue module (imported by httpx's dependencies) when run as a script.
sys.path[:] = [p for p in sys.path if p != os.path.dirname(os.path.abspath(__file__))]

import httpx  # noqa: E402
from click.testing import CliRunner  # noqa: E402

from whirr.cli.jobs import status_cmd  # noqa: E402
from whirr.clock import utc_now  # noqa: E402
from whirr.events import (  # noqa: E402
    JobClaimed,
    JobFinished,
    JobStarted,
    JobSubmitted,
    Pending,
    RunFinished,
    RunStarted,
    WorkerRegistered,
    WorkerSeen,
    job_stream,
    run_stream,
    worker_stream,
)
from whirr.project import init_project  # noqa: E402
from whirr.store import EventStore  # noqa: E402
from whirr.store.postgres import PostgresStore  # noqa: E402
from whirr.store.sqlite import SQLiteStore  # noqa: E402

WHIRR = [sys.executable, "-m", "whirr.cli.main"]
TOKEN = "bench-token"
JOBS_PER_APPEND = 1000
RUNNING, QUEUED, WORKERS = 10, 30, 80
State = Literal["queued", "running", "completed", "failed"]


def job_events(job_id: int, state: State, at: datetime) -> list[Pending]:
    """A job's events up to ``state`` (queued, running or an end)."""
    run_id, stream = f"job-{job_id}", job_stream(job_id)
    worker = f"gpu-{job_id % WORKERS:02d}"
    tags = ["sweep", f"group-{job_id % 20}"]
    events = [
        Pending(
            stream,
            JobSubmitted(
                job_id=job_id,
                command_argv=["python", "train.py", f"--seed={job_id}"],
                workdir="/srv/proj",
                run_id=run_id,
                config={"lr": 1e-3, "seed": job_id},
                tags=tags,
            ),
        )
    ]
    if state == "queued":
        return events
    lease = at + timedelta(hours=1)
    events += [
        Pending(
            stream, JobClaimed(job_id=job_id, worker_id=worker, attempt=1, lease_expires_at=lease)
        ),
        Pending(stream, JobStarted(job_id=job_id, worker_id=worker, attempt=1, pid=1000)),
        Pending(
            run_stream(run_id),
            RunStarted(run_id=run_id, run_dir=f"runs/{run_id}", job_id=job_id, tags=tags),
        ),
    ]
    if state == "running":
        return events
    code = 0 if state == "completed" else 1
    finished = RunFinished(run_id=run_id, status=state, exit_code=code)
    ended = JobFinished(job_id=job_id, attempt=1, outcome=state, worker_id=worker, exit_code=code)
    return [*events, Pending(run_stream(run_id), finished), Pending(stream, ended)]


def generate(open_store: Callable[[Callable[[], datetime]], EventStore], jobs: int) -> float:
    """Write the workload of ``jobs`` jobs; seconds taken."""
    started = time.perf_counter()
    month_ago = utc_now() - timedelta(days=30)
    old = open_store(lambda: month_ago)
    try:  # restarted workers' ids, long gone
        gone = [
            Pending(worker_stream(f"old-{i}"), WorkerRegistered(worker_id=f"old-{i}", hostname="h"))
            for i in range(jobs // 100)
        ]
        for first in range(0, len(gone), 5000):
            old.append(gone[first : first + 5000])
    finally:
        old.close()
    store = open_store(utc_now)
    try:
        store.append(
            [
                Pending(
                    worker_stream(f"gpu-{w:02d}"),
                    WorkerRegistered(worker_id=f"gpu-{w:02d}", hostname="h"),
                )
                for w in range(WORKERS)
            ]
        )
        now = utc_now()
        for first in range(1, jobs + 1, JOBS_PER_APPEND):
            events: list[Pending] = []
            for job_id in range(first, min(jobs, first + JOBS_PER_APPEND - 1) + 1):
                newest = jobs - job_id
                state: State = (
                    "running"
                    if newest < RUNNING
                    else "queued"
                    if newest < RUNNING + QUEUED
                    else ("failed" if job_id % 10 == 0 else "completed")
                )
                events += job_events(job_id, state, now)
            store.append(events)
        store.append(
            [
                Pending(worker_stream(f"gpu-{w:02d}"), WorkerSeen(worker_id=f"gpu-{w:02d}"))
                for w in range(WORKERS)
            ]
        )
    finally:
        store.close()
    return time.perf_counter() - started


#: One read at one size: a name and the call that makes it.
Reads = dict[str, Callable[[], object]]


def interleaved(by_size: dict[int, Reads], repeat: int) -> dict[int, dict[str, float]]:
    """Median ms of each read at each size, the sizes' calls taken in turn (A, B, A, B...)
    so that a busy moment of the machine weighs on both alike."""
    names = list(next(iter(by_size.values())))
    times: dict[int, dict[str, list[float]]] = {n: {name: [] for name in names} for n in by_size}
    for round_ in range(5 + repeat):
        for name in names:
            for size, reads in by_size.items():
                started = time.perf_counter()
                reads[name]()
                if round_ >= 5:  # the first rounds warm caches and connections
                    times[size][name].append(time.perf_counter() - started)
    return {
        size: {name: statistics.median(t) * 1000 for name, t in by_name.items()}
        for size, by_name in times.items()
    }


def cli_status(runner: CliRunner, args: list[str], cwd: Path | None = None) -> None:
    here = os.getcwd()
    if cwd is not None:
        os.chdir(cwd)
    try:
        result = runner.invoke(status_cmd, args, catch_exceptions=False)
    finally:
        os.chdir(here)
    if result.exit_code != 0:
        raise RuntimeError(f"whirr status failed: {result.output}")


class Server:
    """``whirr server`` over a data dir (and a PostgreSQL URL when given)."""

    def __init__(self, root: Path, database_url: str | None) -> None:
        import socket

        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            self.port = int(sock.getsockname()[1])
        self.url = f"http://127.0.0.1:{self.port}"
        cmd = [*WHIRR, "server", "-p", str(self.port), "-d", str(root / "data"), "--token", TOKEN]
        if database_url:
            cmd += ["--database-url", database_url]
        env = {k: v for k, v in os.environ.items() if not k.startswith("WHIRR_")}
        self.log = open(root / "server.log", "ab")  # noqa: SIM115 (closed in stop)
        self.proc = subprocess.Popen(cmd, env=env, stdout=self.log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"{self.url}/api/v1/health", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            if self.proc.poll() is not None:
                break
            time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"the server did not start; see {root / 'server.log'}")

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.log.close()


def server_reads(stack: ExitStack, root: Path, database_url: str | None) -> Reads:
    """The reads of a server started over ``root``'s data dir (or ``database_url``)."""
    server = Server(root, database_url)
    stack.callback(server.stop)
    http = stack.enter_context(
        httpx.Client(base_url=f"{server.url}/api/v1", headers={"Authorization": f"Bearer {TOKEN}"})
    )
    runner = CliRunner(env={"WHIRR_SERVER_URL": server.url, "WHIRR_TOKEN": TOKEN})
    return {
        "GET /status": lambda: http.get("/status").raise_for_status(),
        "GET /runs?tag=<unused>": lambda: http.get(
            "/runs", params={"tag": "never-used"}
        ).raise_for_status(),
        "whirr status --server": lambda: cli_status(runner, []),
    }


@contextmanager
def schema_url(base: str) -> Iterator[str]:
    """A fresh schema in the database at ``base``: its URL, dropped afterwards."""
    import psycopg
    from psycopg import sql

    name = f"bench_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(base, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE SCHEMA {}").format(sql.Identifier(name)))
    parts = urlsplit(base)
    query = [(k, v) for k, v in parse_qsl(parts.query) if k != "options"]
    query.append(("options", f"-csearch_path={name}"))
    try:
        yield urlunsplit(parts._replace(query=urlencode(query)))
    finally:
        with psycopg.connect(base, autocommit=True) as conn:
            conn.execute(sql.SQL("DROP SCHEMA {} CASCADE").format(sql.Identifier(name)))


def measure_sqlite(sizes: list[int], repeat: int) -> dict[int, dict[str, float]]:
    """SQLite projects (``whirr status`` on each) whose logs servers also serve."""
    with ExitStack() as stack:
        by_size: dict[int, Reads] = {}
        for jobs in sizes:
            root = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="whirr-bench-")))
            project, _ = init_project(root / "proj")
            db = str(project.db_path)
            took = generate(functools.partial(SQLiteStore, db), jobs)
            print(f"  sqlite: {jobs:,} jobs written in {took:.1f} s", flush=True)
            (root / "data").mkdir()  # the server's data dir: a copy of the same log
            for suffix in ("", "-wal"):
                source = Path(f"{project.db_path}{suffix}")
                if source.exists():
                    (root / "data" / f"whirr.db{suffix}").write_bytes(source.read_bytes())
            local = CliRunner(env={"WHIRR_SERVER_URL": "", "WHIRR_TOKEN": ""})
            by_size[jobs] = {
                "whirr status": functools.partial(cli_status, local, [], project.root),
                **server_reads(stack, root, None),
            }
        return interleaved(by_size, repeat)


def measure_postgres(base: str, sizes: list[int], repeat: int) -> dict[int, dict[str, float]]:
    """Servers over PostgreSQL, a schema for each size."""
    import psycopg

    with ExitStack() as stack:
        by_size: dict[int, Reads] = {}
        for jobs in sizes:
            url = stack.enter_context(schema_url(base))
            took = generate(functools.partial(PostgresStore, url), jobs)
            print(f"  postgres: {jobs:,} jobs written in {took:.1f} s", flush=True)
            with psycopg.connect(url, autocommit=True) as conn:
                conn.execute("ANALYZE")  # as autovacuum would soon after such a load
            root = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="whirr-bench-")))
            by_size[jobs] = server_reads(stack, root, url)
        return interleaved(by_size, repeat)


def report(backend: str, by_size: dict[int, dict[str, float]]) -> None:
    sizes = sorted(by_size)
    small, large = sizes[0], sizes[-1]
    print(f"\n{backend}: median ms per call")
    print(f"  {'read':<26}" + "".join(f"{n:>12,}" for n in sizes) + f"{'ratio':>8}")
    for name in by_size[small]:
        values = [by_size[n][name] for n in sizes]
        ratio = by_size[large][name] / by_size[small][name]
        flag = "" if ratio <= 1.5 else "  > 1.5"
        print(f"  {name:<26}" + "".join(f"{v:>12.2f}" for v in values) + f"{ratio:>8.2f}{flag}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[1000, 100_000])
    parser.add_argument("--repeat", type=int, default=60)
    parser.add_argument("--postgres", default=os.environ.get("WHIRR_TEST_POSTGRES_URL"))
    parser.add_argument("--skip-sqlite", action="store_true")
    args = parser.parse_args()
    if not args.skip_sqlite:
        report("SQLite", measure_sqlite(args.sizes, args.repeat))
    if args.postgres:
        report("PostgreSQL", measure_postgres(args.postgres, args.sizes, args.repeat))
    else:
        print("\nPostgreSQL: skipped (no --postgres URL nor WHIRR_TEST_POSTGRES_URL)")


if __name__ == "__main__":
    main()
