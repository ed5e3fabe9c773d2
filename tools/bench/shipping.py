"""Shipping run files without a shared filesystem (issue 16): how soon the head node sees
a logged row, and what shipping costs ``run.log()``.

One bench run, on this machine, all over loopback:
- ``whirr server`` on data dir A; remote workers on data dir B (the Python worker with
  ``--slots N``, or N Rust workers with ``--worker rust``): nothing shared but HTTP;
- N queued jobs (default 8), each logging ``--rate`` rows per second (default 1,000)
  for ``--seconds``; every row carries ``t_log``, the wall clock just before its
  ``run.log()``;
- beside them, in the same window and at the same pace, two direct runs: one local
  (a project on disk, no server) and one with ``WHIRR_SERVER_URL`` (the tracking
  library's background shipper).

Prints:
- head-node visibility: for every row of the N jobs, the time from ``t_log`` to the row
  being readable through the server's ``GET /runs/{id}/metrics`` (polled every
  ``--poll`` seconds per run, so the figure includes up to one poll interval); median,
  p99 and max (targets: median <= 1 s, p99 <= 3 s), and how many rows were seen;
- ``run.log()`` cost: the median over 10 ms batches of the mean wall time (and thread CPU
  time) per call, in the remote jobs (median of the N), the local direct run and the
  direct run on the server; the ratios remote/local (target <= 1.1).

Nothing is asserted: the figures go in the issue's closing note.

Usage: python tools/bench/shipping.py [--jobs 8] [--rate 1000] [--seconds 10]
       [--worker python|rust] [--postgres URL]
"""

from __future__ import annotations

import sys
from pathlib import Path

# Run as a script, this directory comes first on sys.path, and its queue.py (a bench)
# hides the standard library's queue module that httpx needs.
if sys.path and Path(sys.path[0]).resolve() == Path(__file__).resolve().parent:
    del sys.path[0]

import argparse
import json
import os
import shutil
import socket
import statistics
import subprocess
import tempfile
import threading
import time
from typing import Any

import httpx

WHIRR = [sys.executable, "-m", "whirr.cli.main"]
TOKEN = "bench-token"
ROOT = Path(__file__).resolve().parents[2]

# argv: name seconds rate out_json barrier_dir. Logs ``rate`` rows/s in batches every
# 10 ms once ``barrier_dir/go`` exists; writes its per-call costs to ``out_json``.
JOB = """\
import json, os, pathlib, statistics, sys, time, whirr
name, seconds, rate, out, barrier = sys.argv[1], float(sys.argv[2]), int(sys.argv[3]), \
    sys.argv[4], pathlib.Path(sys.argv[5])
run = whirr.init(name=name, system_metrics=False, capture_git=False, capture_pip=False)
log = run.log
(barrier / f"ready-{name}").touch()
for _ in range(6000):  # at most ~300 s
    if (barrier / "go").exists():
        break
    time.sleep(0.05)
batch = max(1, rate // 100)
period = batch / rate
wall, cpu = [], []
n = 0
start = time.monotonic()
due = start
while time.monotonic() - start < seconds:
    w0, c0 = time.perf_counter_ns(), time.thread_time_ns()
    for _ in range(batch):
        log({"t_log": time.time(), "loss": 0.5}, step=n)
        n += 1
    wall.append((time.perf_counter_ns() - w0) / batch)
    cpu.append((time.thread_time_ns() - c0) / batch)
    due += period
    delay = due - time.monotonic()
    if delay > 0:
        time.sleep(delay)
run.finish()
pathlib.Path(out).write_text(json.dumps({
    "run_id": run.run_id, "rows": n,
    "wall_ns": statistics.median(wall), "cpu_ns": statistics.median(cpu),
}))
"""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait(predicate: Any, timeout: float, what: str, interval: float = 0.05) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise SystemExit(f"timed out after {timeout}s waiting for {what}")


class Bench:
    def __init__(self, root: Path, args: argparse.Namespace) -> None:
        self.root, self.args = root, args
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.procs: list[subprocess.Popen[bytes]] = []
        self.logs = root / "logs"
        self.logs.mkdir()
        self.barrier = root / "barrier"
        self.barrier.mkdir()
        self.env = {
            k: v for k, v in os.environ.items() if k not in ("WHIRR_DATABASE_URL", "WHIRR_DATA_DIR")
        }
        self.env.update(WHIRR_SERVER_URL=self.url, WHIRR_TOKEN=TOKEN, PYTHONPATH=str(ROOT))
        self.http = httpx.Client(
            base_url=f"{self.url}/api/v1",
            headers={"Authorization": f"Bearer {TOKEN}"},
            timeout=60,
        )

    def spawn(self, cmd: list[str], log: str, **kw: Any) -> subprocess.Popen[bytes]:
        with open(self.logs / log, "ab") as out:
            proc = subprocess.Popen(
                cmd, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, **kw
            )
        self.procs.append(proc)
        return proc

    def start_server(self) -> None:
        (self.root / "server-a").mkdir()
        cmd = [*WHIRR, "server", "-p", str(self.port), "-d", str(self.root / "server-a")]
        cmd += ["--token", TOKEN]
        if self.args.postgres:
            cmd += ["--database-url", self.args.postgres]
        self.spawn(cmd, "server.log", env=self.env, cwd=self.root)

        def up() -> bool:
            try:
                return self.http.get("/health").status_code == 200
            except httpx.TransportError:
                return False

        wait(up, 60, "the server")

    def start_workers(self) -> None:
        data = self.root / "worker-b"
        if self.args.worker == "python":
            cmd = [*WHIRR, "worker", "--server", self.url, "--data-dir", str(data), "-q"]
            cmd += ["--slots", str(self.args.jobs), "--lease-seconds", "60"]
            self.spawn(cmd, "worker.log", env=self.env, cwd=self.root)
            return
        binary = ROOT / "worker-rust" / "target" / "release" / "whirr-worker"
        if not binary.is_file():
            raise SystemExit(f"{binary} is missing: cargo build --release in worker-rust")
        for n in range(self.args.jobs):
            cmd = [str(binary), "-s", self.url, "-d", str(data), "--poll-interval", "0.5"]
            cmd += ["--worker-id", f"rust-{n}"]
            self.spawn(cmd, f"worker-{n}.log", env=self.env, cwd=self.root)

    def job_argv(self, name: str) -> list[str]:
        a = self.args
        out = self.root / "costs" / f"{name}.json"
        script = str(self.root / "job.py")
        return [
            sys.executable,
            script,
            name,
            str(a.seconds),
            str(a.rate),
            str(out),
            str(self.barrier),
        ]

    def run(self) -> None:
        a = self.args
        (self.root / "job.py").write_text(JOB)
        (self.root / "costs").mkdir()
        self.start_server()
        self.start_workers()
        jobs = []
        for n in range(a.jobs):
            work = self.root / "work" / f"job-{n}"
            work.mkdir(parents=True)
            body = {"command_argv": self.job_argv(f"remote-{n}"), "workdir": str(work)}
            resp = self.http.post("/jobs", json=body)
            resp.raise_for_status()
            jobs.append(int(resp.json()["job_id"]))
        # The two direct runs: one in a local project (no server), one on the server.
        project = self.root / "project"
        project.mkdir()
        local_env = {k: v for k, v in self.env.items() if k not in ("WHIRR_SERVER_URL",)}
        subprocess.run(
            [*WHIRR, "init", str(project)], env=local_env, check=True, capture_output=True
        )
        self.spawn(self.job_argv("local"), "local.log", env=local_env, cwd=project)
        direct = self.root / "direct"
        direct.mkdir()
        self.spawn(self.job_argv("direct"), "direct.log", env=self.env, cwd=direct)
        names = [f"remote-{n}" for n in range(a.jobs)] + ["local", "direct"]
        wait(
            lambda: all((self.barrier / f"ready-{n}").exists() for n in names),
            120,
            "every job to be ready",
        )
        run_ids = {}
        for job_id in jobs:
            run_ids[job_id] = self.http.get(f"/jobs/{job_id}").json()["run_id"]
        latencies: list[float] = []
        seen: dict[str, int] = {}
        lock = threading.Lock()
        stop = threading.Event()
        threads = [
            threading.Thread(
                target=self.observe, args=(rid, latencies, seen, lock, stop), daemon=True
            )
            for rid in run_ids.values()
        ]
        for t in threads:
            t.start()
        started = time.monotonic()
        (self.barrier / "go").touch()
        costs = self.root / "costs"
        wait(
            lambda: all((costs / f"{n}.json").exists() for n in names),
            a.seconds + 120,
            "every job to finish logging",
            interval=0.2,
        )
        expected = {
            json.loads((costs / f"remote-{n}.json").read_text())["run_id"]: json.loads(
                (costs / f"remote-{n}.json").read_text()
            )["rows"]
            for n in range(a.jobs)
        }
        # Every row should become visible; give the shippers a bounded while to finish.
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            with lock:
                if all(seen.get(r, 0) >= expected.get(r, 0) for r in run_ids.values()):
                    break
            time.sleep(0.1)
        stop.set()
        for t in threads:
            t.join(timeout=10)
        self.report(names, latencies, seen, expected, time.monotonic() - started)

    def observe(
        self,
        run_id: str,
        latencies: list[float],
        seen: dict[str, int],
        lock: threading.Lock,
        stop: threading.Event,
    ) -> None:
        """Poll the run's metrics from the next unseen ``_idx``; time each new row."""
        since = 0
        with httpx.Client(
            base_url=f"{self.url}/api/v1", headers={"Authorization": f"Bearer {TOKEN}"}, timeout=30
        ) as http:
            while not stop.is_set():
                t0 = time.monotonic()
                try:
                    resp = http.get(f"/runs/{run_id}/metrics", params={"since": since})
                    rows = resp.json().get("metrics", []) if resp.status_code == 200 else []
                except (httpx.HTTPError, ValueError):
                    rows = []
                now = time.time()
                fresh = [r for r in rows if isinstance(r.get("_idx"), int) and r["_idx"] >= since]
                if fresh:
                    since = max(r["_idx"] for r in fresh) + 1
                    with lock:
                        latencies.extend(now - float(r["t_log"]) for r in fresh if "t_log" in r)
                        seen[run_id] = seen.get(run_id, 0) + len(fresh)
                time.sleep(max(0.0, self.args.poll - (time.monotonic() - t0)))

    def report(
        self,
        names: list[str],
        latencies: list[float],
        seen: dict[str, int],
        expected: dict[str, int],
        elapsed: float,
    ) -> None:
        a = self.args
        costs = {n: json.loads((self.root / "costs" / f"{n}.json").read_text()) for n in names}
        print(
            f"shipping bench: {a.jobs} remote jobs ({a.worker} worker) x {a.rate} rows/s "
            f"for {a.seconds:g} s, poll {a.poll:g} s, store "
            f"{'postgres' if a.postgres else 'sqlite'}, {os.cpu_count()} CPUs, {elapsed:.1f} s"
        )
        total = sum(expected.values())
        got = sum(seen.values())
        print(f"rows logged by the remote jobs: {total}; visible on the server: {got}")
        if latencies:
            ordered = sorted(latencies)
            p99 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]
            print(
                f"head-node visibility: median {statistics.median(ordered):.3f} s, "
                f"p99 {p99:.3f} s, max {ordered[-1]:.3f} s  (targets: median <= 1 s, p99 <= 3 s)"
            )
        else:
            print("head-node visibility: no row became visible (is shipping implemented?)")
        remote_wall = statistics.median(costs[f"remote-{n}"]["wall_ns"] for n in range(a.jobs))
        remote_cpu = statistics.median(costs[f"remote-{n}"]["cpu_ns"] for n in range(a.jobs))
        local, direct = costs["local"], costs["direct"]
        print("run.log() per call (median of 10 ms batch means):")
        print(
            f"  local direct run      wall {local['wall_ns'] / 1000:7.2f} us  "
            f"cpu {local['cpu_ns'] / 1000:7.2f} us"
        )
        print(
            f"  remote jobs (median)  wall {remote_wall / 1000:7.2f} us  "
            f"cpu {remote_cpu / 1000:7.2f} us"
        )
        print(
            f"  direct run on server  wall {direct['wall_ns'] / 1000:7.2f} us  "
            f"cpu {direct['cpu_ns'] / 1000:7.2f} us"
        )
        print(
            f"  ratio remote job / local: wall {remote_wall / local['wall_ns']:.2f}, "
            f"cpu {remote_cpu / local['cpu_ns']:.2f}  (target <= 1.1)"
        )
        print(
            f"  ratio direct on server / local: wall {direct['wall_ns'] / local['wall_ns']:.2f}, "
            f"cpu {direct['cpu_ns'] / local['cpu_ns']:.2f}  (target <= 1.1)"
        )

    def close(self) -> None:
        self.http.close()
        for proc in reversed(self.procs):
            if proc.poll() is None:
                proc.terminate()
        for proc in reversed(self.procs):
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=8)
    parser.add_argument("--rate", type=int, default=1000, help="rows per second per job")
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--poll", type=float, default=0.05, help="seconds between reads")
    parser.add_argument("--worker", choices=["python", "rust"], default="python")
    parser.add_argument("--postgres", default=None, help="a PostgreSQL URL for the store")
    parser.add_argument("--keep", action="store_true", help="keep the temporary directory")
    args = parser.parse_args()
    root = Path(tempfile.mkdtemp(prefix="whirr-bench-shipping-"))
    bench = Bench(root, args)
    try:
        bench.run()
    finally:
        bench.close()
        if args.keep:
            print(f"kept {root}")
        else:
            shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
