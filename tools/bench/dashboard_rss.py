"""Server memory after opening the dashboard (issue 19, item 4): a ``whirr server`` over a
SQLite data dir of 100,000 runs, its RSS once it answers, then after the dashboard's
overview and runs list (its page and JSON: newest first, then sorted by a summary key,
then text-filtered, then a page deep in the list) were opened; the ratio of the two.
Target: at most 1.3 (the dashboard pages runs from the store instead of holding them).

The runs are written straight through the store's batch append (a started, a summary and
a finished event per run, 1,000 runs per append), so 100k runs take seconds, not the
minutes of one append each.

    .venv/bin/python tools/bench/dashboard_rss.py [--runs 100000] [--keep DIR]
"""

from __future__ import annotations

import argparse
import os
import random
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

# This directory holds a benchmark named queue.py, which would shadow the standard
# library's queue module (imported by httpx's dependencies) when run as a script.
sys.path[:] = [p for p in sys.path if p != os.path.dirname(os.path.abspath(__file__))]

import httpx  # noqa: E402

from whirr.events import Pending  # noqa: E402
from whirr.events.base import run_stream  # noqa: E402
from whirr.events.runs import RunFinished, RunStarted, RunSummaryUpdated  # noqa: E402
from whirr.store import open_store  # noqa: E402

WHIRR = [sys.executable, "-m", "whirr.cli.main"]
TOKEN = "bench-token"
BATCH = 1000


def generate(data_dir: Path, runs: int) -> float:
    """Write ``runs`` finished runs into the data dir's SQLite store; seconds taken."""
    started = time.perf_counter()
    store = open_store(f"sqlite://{(data_dir / 'whirr.db').resolve()}")
    rng = random.Random(7)
    try:
        for first in range(0, runs, BATCH):
            events = []
            for i in range(first, min(runs, first + BATCH)):
                run_id = f"run-{i:06d}"
                config = {
                    "lr": rng.choice([1e-4, 3e-4, 1e-3, 3e-3]),
                    "batch_size": rng.choice([32, 64, 128]),
                    "model": {"depth": rng.choice([18, 34, 50]), "width": rng.randint(1, 4)},
                    "optimizer": rng.choice(["adam", "sgd", "adamw"]),
                    "seed": i,
                }
                summary = {"loss": rng.random(), "acc": rng.random(), "epoch": 10}
                stream = run_stream(run_id)
                events += [
                    Pending(
                        stream,
                        RunStarted(
                            run_id=run_id,
                            run_dir=str(data_dir / "runs" / run_id),
                            name=f"sweep-{i // 100}-{i % 100}",
                            job_id=None,
                            config=config,
                            tags=["sweep", f"group-{i % 20}"],
                            hostname="gpu-box",
                            pid=None,
                        ),
                    ),
                    Pending(stream, RunSummaryUpdated(run_id=run_id, summary=summary)),
                    Pending(stream, RunFinished(run_id=run_id, status="completed", exit_code=0)),
                ]
            store.append(events)
    finally:
        store.close()
    return time.perf_counter() - started


def rss_mb(pid: int) -> float:
    """Resident set size of ``pid`` in MB (``VmRSS`` from /proc)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no VmRSS for {pid}")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def settle(pid: int) -> float:
    """RSS once it stops moving (the server's startup threads done), at most 10 s."""
    last, deadline = rss_mb(pid), time.monotonic() + 10
    while time.monotonic() < deadline:
        time.sleep(0.5)
        now = rss_mb(pid)
        if abs(now - last) < 0.5:
            return now
        last = now
    return last


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=100_000)
    parser.add_argument("--keep", type=Path, help="keep the data dir here")
    args = parser.parse_args()
    root = args.keep or Path(tempfile.mkdtemp(prefix="whirr-dash-rss-"))
    data = root / "data"
    data.mkdir(parents=True, exist_ok=True)
    took = generate(data, args.runs)
    print(f"generated {args.runs:,} runs in {took:.1f} s ({data})")

    port = free_port()
    url = f"http://127.0.0.1:{port}"
    log = open(root / "server.log", "ab")  # noqa: SIM115 (open while the server runs)
    server = subprocess.Popen(
        [*WHIRR, "server", "-p", str(port), "-d", str(data), "--token", TOKEN],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        client = httpx.Client(
            base_url=url, timeout=120, headers={"Authorization": f"Bearer {TOKEN}"}
        )
        deadline = time.monotonic() + 60
        while True:
            try:
                if client.get("/api/v1/status").status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline or server.poll() is not None:
                raise SystemExit(f"the server did not come up; see {root / 'server.log'}")
            time.sleep(0.2)
        before = settle(server.pid)
        timings = []
        for path in [
            "/",
            "/ui/overview",
            "/runs",
            "/ui/runs?offset=0&limit=100",
            "/ui/runs?sort=summary.loss&order=asc&offset=0&limit=100",
            "/ui/runs?q=sweep-42&offset=0&limit=100",
            "/ui/runs?sort=config.model.depth&order=desc&offset=50000&limit=100",
        ]:
            t = time.perf_counter()
            answer = client.get(path)
            answer.raise_for_status()
            timings.append((path, time.perf_counter() - t))
        after = settle(server.pid)
        for path, seconds in timings:
            print(f"  {seconds * 1000:8.1f} ms  GET {path}")
        print(f"server RSS before: {before:.0f} MB, after opening the dashboard: {after:.0f} MB")
        print(f"ratio: {after / before:.2f} (target <= 1.30)")
    finally:
        server.send_signal(signal.SIGTERM)
        try:
            server.wait(20)
        except subprocess.TimeoutExpired:
            server.kill()
        log.close()


if __name__ == "__main__":
    main()
