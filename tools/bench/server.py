"""Server benchmark (issue 5): submit-to-start latency of an idle remote worker, claim +
complete cycles per second with 16 concurrent HTTP workers on SQLite and PostgreSQL, and
requests per second for ``GET /api/v1/status``.

Prints medians, each beside a reference measured in the same run (a bare fork+exec of the
job's command; a bare HTTP round trip to ``/health``), since this machine is noisy.

    .venv/bin/python tools/bench/server.py [--postgres URL]

PostgreSQL comes from ``--postgres`` or ``WHIRR_TEST_POSTGRES_URL``
(``eval "$(tools/ci/postgres.sh)"``); each run gets a fresh schema, dropped afterwards.
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

# This directory holds a benchmark named queue.py, which would shadow the standard
# library's queue module (imported by httpx's dependencies) when run as a script.
sys.path[:] = [p for p in sys.path if p != os.path.dirname(os.path.abspath(__file__))]

import httpx  # noqa: E402

WHIRR = [sys.executable, "-m", "whirr.cli.main"]
TOKEN = "bench-token"
HEADERS = {"Authorization": f"Bearer {TOKEN}"}


class Server:
    """A ``whirr server`` subprocess on a free loopback port."""

    def __init__(self, root: Path, database_url: str | None = None) -> None:
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            self.port = sock.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self.data = root / "data"
        cmd = [*WHIRR, "server", "-p", str(self.port), "-d", str(self.data), "--token", TOKEN]
        if database_url:
            cmd += ["--database-url", database_url]
        self.proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"{self.url}/api/v1/health", timeout=1).status_code == 200:
                    return
            except httpx.TransportError:
                time.sleep(0.05)
        raise SystemExit("whirr server did not start")

    def stop(self) -> None:
        self.proc.send_signal(signal.SIGTERM)
        self.proc.wait(timeout=30)


def api(url: str) -> httpx.Client:
    return httpx.Client(base_url=f"{url}/api/v1", headers=HEADERS, timeout=60)


# -- 1. submit-to-start latency -----------------------------------------------------------
def submit_to_start(root: Path, rounds: int) -> tuple[float, float]:
    """Median seconds from sending a submit to the job's process running, with one idle
    remote worker long-polling; and a bare fork+exec of the same command for reference."""
    server = Server(root)
    stamp = root / "started"
    command = ["sh", "-c", f"date +%s.%N > {stamp}"]
    env = {**os.environ, "WHIRR_TOKEN": TOKEN}
    worker = subprocess.Popen([*WHIRR, "worker", "-s", server.url, "-d", str(server.data), "-q"],
                              env=env)
    latencies, bare = [], []
    try:
        with api(server.url) as http:
            http.post("/jobs", json={"command_argv": ["true"], "workdir": str(root)})
            wait_idle(http)
            for _ in range(rounds):
                stamp.unlink(missing_ok=True)
                sent = time.time()
                http.post("/jobs", json={"command_argv": command, "workdir": str(root)})
                while not (stamp.exists() and stamp.read_text().strip()):
                    time.sleep(0.001)
                latencies.append(float(stamp.read_text()) - sent)
                wait_idle(http)
                stamp.unlink()
                sent = time.time()
                subprocess.run(command, check=True)
                bare.append(float(stamp.read_text()) - sent)
    finally:
        worker.send_signal(signal.SIGTERM)
        worker.wait(timeout=30)
        server.stop()
    return statistics.median(latencies), statistics.median(bare)


def wait_idle(http: httpx.Client) -> None:
    """Until nothing is queued or running (and the worker is back in its long-poll)."""
    while True:
        status = http.get("/status").json()
        if status["queued"] == 0 and status["running"] == 0:
            time.sleep(0.05)
            return
        time.sleep(0.005)


# -- 2. claim + complete cycles -----------------------------------------------------------
def _cycle_worker(url: str, name: str, threads: int, counts: multiprocessing.Queue) -> None:
    def loop(worker_id: str) -> None:
        done = 0
        with api(url) as http:
            while True:
                job = http.post("/jobs/claim", json={"worker_id": worker_id}).json()["job"]
                if job is None:
                    break
                http.post(f"/jobs/{job['id']}/complete", json={
                    "worker_id": worker_id, "exit_code": 0, "attempt": job["attempt"]})
                done += 1
        counts.put(done)

    pool = [threading.Thread(target=loop, args=(f"{name}-{i}",)) for i in range(threads)]
    for t in pool:
        t.start()
    for t in pool:
        t.join()


def cycles_per_second(root: Path, database_url: str | None, jobs: int, rounds: int,
                      concurrency: int = 16, processes: int = 4) -> float:
    """Median claim+complete cycles per second, ``concurrency`` HTTP workers in total."""
    server = Server(root, database_url)
    rates = []
    try:
        with api(server.url) as http:
            for _ in range(rounds):
                for _ in range(jobs):
                    http.post("/jobs", json={"command_argv": ["true"], "workdir": "/tmp"})
                counts: multiprocessing.Queue = multiprocessing.Queue()
                procs = [multiprocessing.Process(
                    target=_cycle_worker,
                    args=(server.url, f"p{p}", concurrency // processes, counts))
                    for p in range(processes)]
                start = time.perf_counter()
                for p in procs:
                    p.start()
                total = sum(counts.get() for _ in range(concurrency))
                elapsed = time.perf_counter() - start
                for p in procs:
                    p.join()
                assert total == jobs, (total, jobs)
                rates.append(total / elapsed)
    finally:
        server.stop()
    return statistics.median(rates)


# -- 3. GET /status -----------------------------------------------------------------------
def _hammer(url: str, path: str, seconds: float, threads: int,
            counts: multiprocessing.Queue) -> None:
    def loop() -> None:
        n = 0
        with api(url) as http:
            end = time.perf_counter() + seconds
            while time.perf_counter() < end:
                http.get(path).raise_for_status()
                n += 1
        counts.put(n)

    pool = [threading.Thread(target=loop) for _ in range(threads)]
    for t in pool:
        t.start()
    for t in pool:
        t.join()


def requests_per_second(root: Path, rounds: int, seconds: float = 3.0,
                        clients: int = 16, processes: int = 4) -> tuple[float, float]:
    """Median requests/s for ``/status`` (100 jobs, 10 workers in the store) and, for
    reference, for ``/health`` (no store access)."""
    server = Server(root)
    try:
        with api(server.url) as http:
            for _ in range(100):
                http.post("/jobs", json={"command_argv": ["true"], "workdir": "/tmp"})
            for i in range(10):
                http.post("/workers/register", json={"worker_id": f"w{i}", "hostname": "h"})
        results = {}
        for path in ("/status", "/health"):
            rates = []
            for _ in range(rounds):
                counts: multiprocessing.Queue = multiprocessing.Queue()
                procs = [multiprocessing.Process(
                    target=_hammer, args=(server.url, path, seconds, clients // processes, counts))
                    for _ in range(processes)]
                for p in procs:
                    p.start()
                total = sum(counts.get() for _ in range(clients))
                for p in procs:
                    p.join()
                rates.append(total / seconds)
            results[path] = statistics.median(rates)
    finally:
        server.stop()
    return results["/status"], results["/health"]


# -- PostgreSQL schema --------------------------------------------------------------------
def fresh_schema(url: str) -> tuple[str, str]:
    import psycopg
    from psycopg import sql

    name = f"bench_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE SCHEMA {}").format(sql.Identifier(name)))
    parts = urlsplit(url)
    query = [(k, v) for k, v in parse_qsl(parts.query) if k != "options"]
    query.append(("options", f"-csearch_path={name}"))
    return urlunsplit(parts._replace(query=urlencode(query))), name


def drop_schema(url: str, name: str) -> None:
    import psycopg
    from psycopg import sql

    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(sql.SQL("DROP SCHEMA {} CASCADE").format(sql.Identifier(name)))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--postgres", default=os.environ.get("WHIRR_TEST_POSTGRES_URL"))
    parser.add_argument("--jobs", type=int, default=1000, help="jobs per throughput round")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="whirr-bench-") as tmp:
        root = Path(tmp)
        latency, bare = submit_to_start(root / "latency", rounds=20)
        print(f"submit-to-start, idle remote worker: median {latency * 1000:.1f} ms "
              f"(reference: bare fork+exec of the job {bare * 1000:.1f} ms)")
        rate = cycles_per_second(root / "sqlite", None, args.jobs, args.rounds)
        print(f"claim+complete, 16 HTTP workers, SQLite: median {rate:.0f} cycles/s")
        if args.postgres:
            url, schema = fresh_schema(args.postgres)
            try:
                rate = cycles_per_second(root / "pg", url, args.jobs, args.rounds)
            finally:
                drop_schema(args.postgres, schema)
            print(f"claim+complete, 16 HTTP workers, PostgreSQL: median {rate:.0f} cycles/s")
        else:
            print("claim+complete on PostgreSQL: skipped (no --postgres / "
                  "WHIRR_TEST_POSTGRES_URL)")
        status, health = requests_per_second(root / "status", args.rounds)
        print(f"GET /api/v1/status, 16 clients: median {status:.0f} req/s "
              f"(reference: GET /health {health:.0f} req/s)")


if __name__ == "__main__":
    main()
