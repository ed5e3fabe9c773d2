"""Server benchmark (issue 5): submit-to-start latency of an idle remote worker, claim +
complete cycles per second with 16 concurrent HTTP workers on SQLite and PostgreSQL, and
requests per second for ``GET /api/v1/status``.

Prints medians, each beside a reference measured in the same run (a bare fork+exec of the
job's command; ``GET /health``, a route that touches no store, from the same 16 clients
on the same server), since this machine is noisy.

The 16 HTTP workers of the throughput parts are threads (4 per process) with a minimal
keep-alive HTTP/1.1 client (``Http`` below) instead of httpx: on a 2-core machine that
the clients share with the server and PostgreSQL, httpx's ~0.6 ms of CPU per request
(measured; a raw socket round trip costs the client ~0.02 ms) would be most of what is
measured. Real workers send a few requests per job, not hundreds per second.

    .venv/bin/python tools/bench/server.py [--postgres URL] [--only PART]

PostgreSQL comes from ``--postgres`` or ``WHIRR_TEST_POSTGRES_URL``
(``eval "$(tools/ci/postgres.sh)"``); each run gets a fresh schema, dropped afterwards.
"""

from __future__ import annotations

import argparse
import json
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
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

# This directory holds a benchmark named queue.py, which would shadow the standard
# library's queue module (imported by httpx's dependencies) when run as a script.
sys.path[:] = [p for p in sys.path if p != os.path.dirname(os.path.abspath(__file__))]

import httpx  # noqa: E402

WHIRR = [sys.executable, "-m", "whirr.cli.main"]
TOKEN = "bench-token"
HEADERS = {"Authorization": f"Bearer {TOKEN}"}


class Http:
    """A minimal keep-alive HTTP/1.1 client for the server's JSON routes: one socket, one
    request at a time, bodies framed by Content-Length (sanic always sends one here)."""

    def __init__(self, url: str) -> None:
        parts = urlsplit(url)
        self.sock = socket.create_connection((parts.hostname, parts.port))
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.buf = b""
        self.head = f"Host: {parts.netloc}\r\nAuthorization: Bearer {TOKEN}\r\n".encode()

    def call(self, method: str, path: str, body: object = None) -> Any:
        """Send one request; the decoded JSON answer (an HTTP error status raises)."""
        data = b"" if body is None else json.dumps(body).encode()
        extra = b"Content-Type: application/json\r\n" if body is not None else b""
        self.sock.sendall(
            b"%s /api/v1%s HTTP/1.1\r\n%s%sContent-Length: %d\r\n\r\n%s"
            % (method.encode(), path.encode(), self.head, extra, len(data), data)
        )
        while (end := self.buf.find(b"\r\n\r\n")) < 0:
            self._fill()
        status_line, *lines = self.buf[:end].decode("latin-1").split("\r\n")
        headers = {k.strip().lower(): v.strip() for k, v in (x.split(":", 1) for x in lines)}
        length = int(headers["content-length"])
        start = end + 4
        while len(self.buf) < start + length:
            self._fill()
        payload, self.buf = self.buf[start : start + length], self.buf[start + length :]
        status = int(status_line.split()[1])
        if status >= 400:
            raise RuntimeError(f"{method} {path}: {status} {payload!r}")
        return json.loads(payload)

    def _fill(self) -> None:
        chunk = self.sock.recv(65536)
        if not chunk:
            raise ConnectionError("the server closed the connection")
        self.buf += chunk

    def close(self) -> None:
        self.sock.close()


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
    worker = subprocess.Popen(
        [*WHIRR, "worker", "-s", server.url, "-d", str(server.data), "-q"], env=env
    )
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
        http = Http(url)
        try:
            while True:
                job = http.call("POST", "/jobs/claim", {"worker_id": worker_id})["job"]
                if job is None:
                    break
                http.call(
                    "POST",
                    f"/jobs/{job['id']}/complete",
                    {"worker_id": worker_id, "exit_code": 0, "attempt": job["attempt"]},
                )
                done += 1
        finally:
            http.close()
        counts.put(done)

    _run_threads(loop, [(f"{name}-{i}",) for i in range(threads)])


def _run_threads(target: object, args: list[tuple[object, ...]]) -> None:
    pool = [threading.Thread(target=target, args=a) for a in args]  # type: ignore[arg-type]
    for t in pool:
        t.start()
    for t in pool:
        t.join()


def cycles_per_second(
    root: Path,
    database_url: str | None,
    jobs: int,
    rounds: int,
    concurrency: int = 16,
    processes: int = 4,
) -> tuple[float, float]:
    """Median claim+complete cycles per second, ``concurrency`` HTTP workers in total; and,
    measured after each round on the same server with the same clients, the median
    requests per second of ``GET /health`` (the HTTP ceiling: a route with no store)."""
    server = Server(root, database_url)
    rates, ceilings = [], []
    try:
        with api(server.url) as http:
            for _ in range(rounds):
                for _ in range(jobs):
                    http.post("/jobs", json={"command_argv": ["true"], "workdir": "/tmp"})
                counts: multiprocessing.Queue = multiprocessing.Queue()
                procs = [
                    multiprocessing.Process(
                        target=_cycle_worker,
                        args=(server.url, f"p{p}", concurrency // processes, counts),
                    )
                    for p in range(processes)
                ]
                start = time.perf_counter()
                for p in procs:
                    p.start()
                total = sum(counts.get() for _ in range(concurrency))
                elapsed = time.perf_counter() - start
                for p in procs:
                    p.join()
                assert total == jobs, (total, jobs)
                rates.append(total / elapsed)
                ceilings.append(_rate(server.url, "/health", 2.0, concurrency, processes))
    finally:
        server.stop()
    return statistics.median(rates), statistics.median(ceilings)


# -- 3. GET /status -----------------------------------------------------------------------
def _hammer(
    url: str, path: str, seconds: float, threads: int, counts: multiprocessing.Queue
) -> None:
    def loop() -> None:
        n = 0
        http = Http(url)
        try:
            end = time.perf_counter() + seconds
            while time.perf_counter() < end:
                http.call("GET", path)
                n += 1
        finally:
            http.close()
        counts.put(n)

    _run_threads(loop, [() for _ in range(threads)])


def _rate(url: str, path: str, seconds: float, clients: int, processes: int) -> float:
    """Requests per second of ``GET path`` from ``clients`` keep-alive clients."""
    counts: multiprocessing.Queue = multiprocessing.Queue()
    procs = [
        multiprocessing.Process(
            target=_hammer, args=(url, path, seconds, clients // processes, counts)
        )
        for _ in range(processes)
    ]
    for p in procs:
        p.start()
    total = sum(counts.get() for _ in range(clients))
    for p in procs:
        p.join()
    return total / seconds


def requests_per_second(
    root: Path, rounds: int, seconds: float = 3.0, clients: int = 16, processes: int = 4
) -> tuple[float, float]:
    """Median requests/s for ``/status`` (100 jobs, 10 workers in the store) and, for
    reference, for ``/health`` (no store access)."""
    server = Server(root)
    try:
        with api(server.url) as http:
            for _ in range(100):
                http.post("/jobs", json={"command_argv": ["true"], "workdir": "/tmp"})
            for i in range(10):
                http.post("/workers/register", json={"worker_id": f"w{i}", "hostname": "h"})
        results = {
            path: statistics.median(
                _rate(server.url, path, seconds, clients, processes) for _ in range(rounds)
            )
            for path in ("/status", "/health")
        }
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


PARTS = ("latency", "sqlite", "postgres", "status")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--postgres", default=os.environ.get("WHIRR_TEST_POSTGRES_URL"))
    parser.add_argument("--jobs", type=int, default=1000, help="jobs per throughput round")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument(
        "--only", choices=PARTS, action="append", help="run only this part (repeatable)"
    )
    args = parser.parse_args()
    parts = args.only or PARTS
    with tempfile.TemporaryDirectory(prefix="whirr-bench-") as tmp:
        root = Path(tmp)
        if "latency" in parts:
            latency, bare = submit_to_start(root / "latency", rounds=20)
            print(
                f"submit-to-start, idle remote worker: median {latency * 1000:.1f} ms "
                f"(reference: bare fork+exec of the job {bare * 1000:.1f} ms)"
            )
        if "sqlite" in parts:
            rate, ceiling = cycles_per_second(root / "sqlite", None, args.jobs, args.rounds)
            _print_cycles("SQLite", rate, ceiling)
        if "postgres" in parts and args.postgres:
            url, schema = fresh_schema(args.postgres)
            try:
                rate, ceiling = cycles_per_second(root / "pg", url, args.jobs, args.rounds)
            finally:
                drop_schema(args.postgres, schema)
            _print_cycles("PostgreSQL", rate, ceiling)
        elif "postgres" in parts:
            print("claim+complete on PostgreSQL: skipped (no --postgres / WHIRR_TEST_POSTGRES_URL)")
        if "status" in parts:
            status, health = requests_per_second(root / "status", args.rounds)
            print(
                f"GET /api/v1/status, 16 clients: median {status:.0f} req/s "
                f"(reference: GET /health {health:.0f} req/s)"
            )
    print(
        f"load average at the end: {' '.join(f'{x:.1f}' for x in os.getloadavg())} "
        f"({os.cpu_count()} CPUs)"
    )


def _print_cycles(store: str, rate: float, ceiling: float) -> None:
    print(
        f"claim+complete, 16 HTTP workers, {store}: median {rate:.0f} cycles/s "
        f"(reference: GET /health on that server {ceiling:.0f} req/s, i.e. "
        f"{ceiling / 2:.0f} cycles/s at two requests per cycle)"
    )


if __name__ == "__main__":
    main()
