"""Rust ``whirr-worker`` vs Python ``whirr worker --server``: size, idle memory, throughput.

Prints, from one run against one ``whirr server`` (SQLite, loopback, a token):

* the size of the stripped release binary (target: at most 2 MB);
* the resident memory of each worker while idle (waiting on a long-poll claim), for the
  worker process itself (target for the Rust one: at most 5 MB) and for its whole
  process tree (both workers keep a small guard process that kills job groups if the
  worker is SIGKILLed). RSS counts shared library pages in every process; PSS shares
  them out fairly, so the tree's PSS is the honest total;
* the jobs per second each drains from the same server: N trivial jobs (``true``) are
  queued while the worker is idle, and the rate is taken from the server's own
  timestamps (first start to last finish), so process start-up does not count.

    python tools/bench/worker_memory.py [--jobs 200] [--idle-seconds 3]

Benchmarks print figures; they assert nothing.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
CRATE = ROOT / "worker-rust"
BINARY = CRATE / "target" / "release" / "whirr-worker"
TOKEN = "bench-token"


def build_binary() -> Path:
    """Builds the release binary (a no-op when it is up to date)."""
    cargo = shutil.which("cargo")
    if cargo:
        subprocess.run([cargo, "build", "--release", "--quiet"], cwd=CRATE, check=True)
    if not BINARY.is_file():
        sys.exit(f"error: {BINARY} is missing and cargo is not on PATH")
    return BINARY


def stripped_size(binary: Path) -> tuple[int, bool]:
    """Size after `strip` (the release profile already strips; this confirms it)."""
    strip = shutil.which("strip")
    if not strip:
        return binary.stat().st_size, False
    with tempfile.TemporaryDirectory() as tmp:
        copy = Path(tmp) / binary.name
        shutil.copy2(binary, copy)
        subprocess.run([strip, str(copy)], check=True)
        return copy.stat().st_size, True


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_for(probe: Callable[[], Any], timeout: float, what: str) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        try:
            value = probe()
        except OSError:
            value = None
        if value:
            return value
        if time.monotonic() > deadline:
            sys.exit(f"error: timed out waiting for {what}")
        time.sleep(0.05)


class Api:
    """Just enough of the HTTP API for the benchmark."""

    def __init__(self, url: str) -> None:
        self.url = url

    def call(self, method: str, path: str, body: Any = None, auth: bool = True) -> Any:
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(f"{self.url}/api/v1{path}", data=data, method=method)
        req.add_header("Content-Type", "application/json")
        if auth:
            req.add_header("Authorization", f"Bearer {TOKEN}")
        with urllib.request.urlopen(req, timeout=60) as resp:
            return json.loads(resp.read())


def tree(pid: int) -> list[int]:
    """``pid`` and all its descendants (by scanning /proc for parent links)."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        children.setdefault(ppid, []).append(int(entry.name))
    found, todo = [], [pid]
    while todo:
        p = todo.pop()
        found.append(p)
        todo.extend(children.get(p, []))
    return found


def memory_kb(pid: int) -> tuple[int, int]:
    """(RSS, PSS) of one process in kB."""
    rss = pss = 0
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            rss = int(line.split()[1])
    try:
        for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
            if line.startswith("Pss:"):
                pss = int(line.split()[1])
    except OSError:
        pss = 0
    return rss, pss


def drain_rate(api: Api, job_ids: list[int]) -> float:
    """Jobs per second between the first start and the last finish (server clock)."""
    jobs = [api.call("GET", f"/jobs/{i}") for i in job_ids]
    bad = [j for j in jobs if j["status"] != "completed"]
    if bad:
        sys.exit(f"error: {len(bad)} jobs did not complete, e.g. {bad[0]}")
    starts = [datetime.fromisoformat(j["started_at"].replace("Z", "+00:00")) for j in jobs]
    ends = [datetime.fromisoformat(j["finished_at"].replace("Z", "+00:00")) for j in jobs]
    span = (max(ends) - min(starts)).total_seconds()
    return len(jobs) / span if span > 0 else float("inf")


def measure(
    name: str, argv: list[str], api: Api, data_dir: Path, jobs: int, idle_seconds: float
) -> dict[str, Any]:
    worker_id = f"bench-{name}"
    """Starts one worker, samples its idle memory, drains `jobs` jobs, stops it."""
    env = {**os.environ, "WHIRR_TOKEN": TOKEN}
    proc = subprocess.Popen(
        argv,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        # Idle: registered and long-polling an empty queue.
        wait_for(
            lambda: any(
                w["id"] == worker_id and w["status"] != "stopped"
                for w in api.call("GET", "/workers")["workers"]
            ),
            60,
            f"{name} to register",
        )
        time.sleep(idle_seconds)
        pids = tree(proc.pid)
        own_rss, own_pss = memory_kb(proc.pid)
        tree_rss = tree_pss = 0
        for pid in pids:
            rss, pss = memory_kb(pid)
            tree_rss += rss
            tree_pss += pss
        ids = [
            api.call(
                "POST",
                "/jobs",
                {"command_argv": ["true"], "workdir": str(data_dir), "name": f"bench-{name}-{i}"},
            )["job_id"]
            for i in range(jobs)
        ]
        wait_for(
            lambda: not api.call("GET", "/jobs?status=active&limit=1")["jobs"],
            600,
            f"{name} to drain {jobs} jobs",
        )
        rate = drain_rate(api, ids)
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    return {
        "name": name,
        "own_rss": own_rss,
        "own_pss": own_pss,
        "tree_rss": tree_rss,
        "tree_pss": tree_pss,
        "processes": len(pids),
        "rate": rate,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--jobs", type=int, default=200, help="jobs each worker drains")
    parser.add_argument(
        "--idle-seconds",
        type=float,
        default=3.0,
        help="how long a worker idles before its memory is sampled",
    )
    args = parser.parse_args()

    binary = build_binary()
    size, confirmed = stripped_size(binary)
    print(
        f"whirr-worker binary: {size / 1e6:.2f} MB ({size} bytes)"
        f"{' stripped' if confirmed else ' (strip not found; as built)'}; target <= 2 MB"
    )

    with tempfile.TemporaryDirectory(prefix="whirr-bench-") as tmp:
        data_dir = Path(tmp) / "data"
        port = free_port()
        api = Api(f"http://127.0.0.1:{port}")
        server = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "whirr.cli.main",
                "server",
                "-p",
                str(port),
                "--host",
                "127.0.0.1",
                "-d",
                str(data_dir),
            ],
            env={**os.environ, "WHIRR_TOKEN": TOKEN},
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            wait_for(
                lambda: api.call("GET", "/health", auth=False)["status"] == "healthy",
                60,
                "whirr server",
            )
            common = ["-s", api.url, "-d", str(data_dir)]
            results = [
                measure(
                    "rust",
                    [str(binary), *common, "--worker-id", "bench-rust"],
                    api,
                    data_dir,
                    args.jobs,
                    args.idle_seconds,
                ),
                measure(
                    "python",
                    [
                        sys.executable,
                        "-m",
                        "whirr.cli.main",
                        "worker",
                        "--quiet",
                        "--id",
                        "bench-python",
                        *common,
                    ],
                    api,
                    data_dir,
                    args.jobs,
                    args.idle_seconds,
                ),
            ]
        finally:
            server.send_signal(signal.SIGINT)
            try:
                server.wait(timeout=30)
            except subprocess.TimeoutExpired:
                server.kill()
                server.wait()

    print(
        f"\n{'worker':<8} {'RSS':>9} {'PSS':>9} {'tree RSS':>9} {'tree PSS':>9} "
        f"{'procs':>5} {'jobs/s':>8}"
    )
    for r in results:
        print(
            f"{r['name']:<8} {r['own_rss'] / 1024:>7.1f}MB {r['own_pss'] / 1024:>7.1f}MB "
            f"{r['tree_rss'] / 1024:>7.1f}MB {r['tree_pss'] / 1024:>7.1f}MB "
            f"{r['processes']:>5} {r['rate']:>8.1f}"
        )
    rust, python = results
    print(
        f"\nidle RSS target (whirr-worker process) <= 5 MB: {rust['own_rss'] / 1024:.1f} MB; "
        f"throughput rust/python: {rust['rate'] / python['rate']:.2f}x "
        f"({args.jobs} jobs of `true` each, same server)"
    )


if __name__ == "__main__":
    main()
