"""What shipping a direct run's files costs ``run.log()`` (issue 16).

A direct run with ``WHIRR_SERVER_URL`` ships its files from a background thread; its
``run.log()`` must stay a local O_APPEND write costing about what it costs in a local
direct run. In one process, this alternates ``rounds`` pairs of runs on the same machine:
a local direct run (a project in a temp dir, no server) and a remote direct run (a real
``whirr server`` subprocess on loopback, its shipper thread sending every row while the
loop logs), each ``calls`` ``run.log({"loss": x, "acc": y}, step=i)`` in batches of 1,000.
Prints the median microseconds per call of each (wall time; the median of the batch
means over all rounds), the ratio remote/local (target <= 1.1), and that the server got
every row.

Usage: python tools/bench/shipping_log.py [--calls 100000] [--rounds 5]
"""

from __future__ import annotations

import argparse
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

# This directory holds a queue.py: keep it from shadowing the standard library's.
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).parent.resolve()]

BATCH = 1000
TOKEN = "bench-token"
SERVER = [sys.executable, "-m", "whirr.cli.main", "server"]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start_server(root: Path) -> tuple[subprocess.Popen[bytes], str]:
    import httpx

    port = free_port()
    url = f"http://127.0.0.1:{port}"
    data = root / "server-data"
    data.mkdir()
    log = open(root / "server.log", "wb")  # noqa: SIM115 - lives as long as the server
    proc = subprocess.Popen(
        [*SERVER, "-p", str(port), "-d", str(data), "--token", TOKEN],
        stdout=log,
        stderr=subprocess.STDOUT,
        env={k: v for k, v in os.environ.items() if not k.startswith("WHIRR_")},
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{url}/api/v1/health", timeout=1).status_code == 200:
                return proc, url
        except httpx.TransportError:
            time.sleep(0.1)
    proc.kill()
    raise SystemExit("whirr server did not come up")


def one_run(calls: int, server: str | None) -> tuple[list[float], str]:
    """Batch means (us per call) of ``calls`` run.log calls; returns them and the run id."""
    import whirr

    run = whirr.init(system_metrics=False, capture_git=False, capture_pip=False, server=server)
    log = run.log
    clock = time.perf_counter_ns
    means = []
    step = 0
    for _ in range(calls // BATCH):
        start = clock()
        for _ in range(BATCH):
            log({"loss": 0.5, "acc": 0.25}, step=step)
            step += 1
        means.append((clock() - start) / BATCH / 1000)
    run.finish()  # the remote run flushes its files here (not timed)
    return means, run.run_id


def server_rows(url: str, run_id: str) -> int:
    import httpx

    resp = httpx.get(
        f"{url}/api/v1/runs/{run_id}/files",
        headers={"Authorization": f"Bearer {TOKEN}"},
        timeout=30,
    )
    resp.raise_for_status()
    size = int(resp.json()["files"]["metrics.jsonl"]["size"])
    return size


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=100_000)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="whirr-bench-ship-") as tmp:
        root = Path(tmp)
        project = root / "project"
        project.mkdir()
        os.chdir(project)
        os.environ.pop("WHIRR_SERVER_URL", None)
        os.environ["WHIRR_TOKEN"] = TOKEN
        proc, url = start_server(root)
        try:
            local: list[float] = []
            remote: list[float] = []
            shipped_ok = True
            for _ in range(args.rounds):
                means, _ = one_run(args.calls, None)
                local += means
                means, run_id = one_run(args.calls, url)
                remote += means
                mine = (project / ".whirr" / "runs" / run_id / "metrics.jsonl").stat().st_size
                shipped_ok = shipped_ok and server_rows(url, run_id) == mine
        finally:
            proc.terminate()
            proc.wait(30)
    lo, re_ = statistics.median(local), statistics.median(remote)
    print(f"run.log() local direct run : {lo:.3f} us/call (median of {len(local)} batches)")
    print(f"run.log() remote direct run: {re_:.3f} us/call (shipping to a loopback server)")
    print(f"ratio remote/local         : {re_ / lo:.3f} (target <= 1.1)")
    print(f"server has every row       : {'yes' if shipped_ok else 'NO'}")


if __name__ == "__main__":
    main()
