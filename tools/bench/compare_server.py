"""Benchmark: ``whirr compare`` of 10 runs x 20,000 steps against a ``whirr server`` on
loopback, next to the same compare in a local project (issue 15's target: within 1.5x).

Builds a project and a server data dir holding the same runs (the same events, the same
``metrics.jsonl`` files), starts ``whirr server`` on a free loopback port, then times the
``whirr`` console script (a fresh process each time, as a user runs it) several times in
each place and prints the medians and their ratio. Three cases for the server:

- cold: the user's cache of the server's run files is empty (every byte is fetched);
- warm: the copies and their Parquet copies are there (the common case: a second look);
- the local project's own cold (no Parquet cache) and warm runs, for reference.

    .venv/bin/python tools/bench/compare_server.py [--repeat 7] [--dir DIR]
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import msgspec

from whirr.events import Pending, RunFinished, RunStarted, RunSummaryUpdated, run_stream
from whirr.project import init_project
from whirr.store.sqlite import SQLiteStore

RUNS, STEPS = 10, 20_000
T0 = datetime(2024, 1, 1, tzinfo=UTC)
BIN = Path(sys.executable).parent
WHIRR = [str(BIN / "whirr")] if (BIN / "whirr").exists() else [sys.executable, "-m", "whirr.cli"]
TOKEN = "bench-token"


def record(db_path: Path, runs_dir: Path) -> list[str]:
    """Record the runs into the store at ``db_path`` and write their metrics files."""
    ids = [f"run-{i:02d}" for i in range(RUNS)]
    store = SQLiteStore(str(db_path), clock=lambda: T0)  # the same times in both places
    try:
        events: list[Pending] = []
        for n, run_id in enumerate(ids):
            config = {"lr": 10 ** -(1 + n % 4), "bs": 32 * (1 + n % 3), "seed": n}
            started = RunStarted(
                run_id=run_id,
                run_dir=str(runs_dir / run_id),
                name=f"run {n}",
                config=config,
                tags=["bench"],
            )
            events += [
                Pending(run_stream(run_id), started),
                Pending(
                    run_stream(run_id),
                    RunSummaryUpdated(run_id=run_id, summary={"best_loss": 1 / (n + 1)}),
                ),
                Pending(run_stream(run_id), RunFinished(run_id=run_id, status="completed")),
            ]
        store.append(events)
    finally:
        store.close()
    enc = msgspec.json.Encoder()
    for n, run_id in enumerate(ids):
        lines = bytearray()
        for i in range(STEPS):
            ts = (T0 + timedelta(seconds=i)).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
            row = {"_idx": i, "_timestamp": ts, "step": i, "loss": 1 / (i + 1 + n), "acc": i / 1e5}
            lines += enc.encode(row) + b"\n"
        (runs_dir / run_id).mkdir(parents=True, exist_ok=True)
        (runs_dir / run_id / "metrics.jsonl").write_bytes(lines)
    return ids


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start_server(data: Path, log: Path) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            [*WHIRR, "server", "-p", str(port), "-d", str(data), "--token", TOKEN],
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"whirr server exited:\n{log.read_text()}")
        try:
            # urllib, not httpx: this directory's queue.py would shadow the stdlib's.
            with urllib.request.urlopen(f"{url}/api/v1/health", timeout=1) as resp:
                if resp.status == 200:
                    return proc, url
        except (urllib.error.URLError, OSError):
            pass
        time.sleep(0.1)
    proc.kill()
    raise SystemExit("whirr server did not come up")


def timed(
    argv: list[str],
    cwd: Path,
    env: dict[str, str],
    repeat: int,
    before: Callable[[], None] | None = None,
) -> list[float]:
    """Wall seconds of ``repeat`` fresh processes (``before`` runs ahead of each, untimed)."""
    walls = []
    for _ in range(repeat):
        if before is not None:
            before()
        start = time.perf_counter()
        subprocess.run(
            argv, cwd=cwd, env=env, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
        )
        walls.append(time.perf_counter() - start)
    return walls


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=7)
    parser.add_argument("--dir", type=Path, help="where to build (default: a temporary dir)")
    args = parser.parse_args()
    root = args.dir or Path(tempfile.mkdtemp(prefix="whirr-bench-compare-"))
    root.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    project, _ = init_project(root / "proj")
    ids = record(project.db_path, project.runs_dir)
    data = root / "server"
    data.mkdir(exist_ok=True)
    record(data / "whirr.db", data / "runs")
    print(f"built {RUNS} runs x {STEPS} steps twice in {time.perf_counter() - started:.1f}s")
    server, url = start_server(data, root / "server.log")
    cache = root / "cache"
    clean = {k: v for k, v in os.environ.items() if k not in ("WHIRR_SERVER_URL", "WHIRR_TOKEN")}
    local_env = {**clean, "WHIRR_CACHE_DIR": str(cache)}
    remote_env = {**local_env, "WHIRR_SERVER_URL": url, "WHIRR_TOKEN": TOKEN}
    elsewhere = root / "elsewhere"
    elsewhere.mkdir(exist_ok=True)
    argv = [*WHIRR, "compare", *ids, "-m", "loss"]
    r = args.repeat
    try:
        # The outputs must agree before their times mean anything.
        same = [
            subprocess.run(argv, cwd=cwd, env=env, capture_output=True, text=True, check=True)
            for cwd, env in ((project.root, local_env), (elsewhere, remote_env))
        ]
        assert same[0].stdout == same[1].stdout, (same[0].stdout, same[1].stdout)
        drop_local = lambda: shutil.rmtree(project.dir / "cache", ignore_errors=True)  # noqa: E731
        drop_remote = lambda: shutil.rmtree(cache, ignore_errors=True)  # noqa: E731
        results = {
            "local, cold (no Parquet cache)": timed(argv, project.root, local_env, r, drop_local),
            "server, cold (empty cache)": timed(argv, elsewhere, remote_env, r, drop_remote),
        }
        # Warm: interleaved, so both see the same machine load.
        warm_local: list[float] = []
        warm_remote: list[float] = []
        for _ in range(r):
            warm_local += timed(argv, project.root, local_env, 1)
            warm_remote += timed(argv, elsewhere, remote_env, 1)
        results["local, warm (Parquet cache)"] = warm_local
        results["server, warm (copies + Parquet)"] = warm_remote
    finally:
        server.send_signal(signal.SIGTERM)
        try:
            server.wait(timeout=15)
        except subprocess.TimeoutExpired:
            server.kill()
    print(f"\nwhirr compare {RUNS} runs x {STEPS} steps -m loss; median of {r} (wall, s):")
    medians = {label: statistics.median(walls) for label, walls in results.items()}
    for label, median in medians.items():
        print(f"  {label:<34} {median:6.3f}   (min {min(results[label]):.3f})")
    warm = medians["server, warm (copies + Parquet)"] / medians["local, warm (Parquet cache)"]
    cold = medians["server, cold (empty cache)"] / medians["local, cold (no Parquet cache)"]
    print(f"\nratio server/local: warm {warm:.2f}x, cold {cold:.2f}x (target: within 1.5x)")
    if not args.dir:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
