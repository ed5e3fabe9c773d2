"""How much ``run.log()`` and ``whirr.init()`` cost a training loop.

Prints, measured in this same run:
- the median microseconds per ``run.log({"loss": x, "acc": y}, step=i)`` over 100,000
  calls (100 batches of 1,000; the median of the batch means), next to two references:
  the floor, an inline loop that encodes the same row (``_idx``, a fresh UTC
  ``_timestamp``, ``step``, the two values) with msgspec into a reused buffer and appends
  it with one ``os.write`` on an O_APPEND descriptor, which is all a writer with
  run.log's guarantees must do; and a bare ``os.write`` of a line of the same length,
  the system call alone. All three as wall time and as this thread's CPU time (user +
  system), which other processes on a busy machine disturb less, with the best batch
  (least disturbed) beside each median;
- ``whirr.init()`` with and without git/pip capture (median of several, in a git repo);
- ``import whirr`` (``python -X importtime``, cumulative, median of several).

Usage: python tools/bench/log_overhead.py [--calls 100000] [--inits 7]
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import msgspec

BATCH = 1000


Timing = tuple[list[float], list[float]]  # (wall, cpu) microseconds per call, per batch


def bench_log(calls: int, clock: Callable[[], int]) -> list[float]:
    import whirr

    run = whirr.init(system_metrics=False, capture_git=False, capture_pip=False)
    log = run.log
    means = []
    step = 0
    for _ in range(calls // BATCH):
        start = clock()
        for _ in range(BATCH):
            log({"loss": 0.5, "acc": 0.25}, step=step)
            step += 1
        means.append((clock() - start) / BATCH / 1000)
    run.finish()
    return means


def bench_floor(path: Path, calls: int, clock: Callable[[], int]) -> tuple[list[float], bytes]:
    """The floor: the row run.log writes, encoded into a reused buffer, and one write;
    inline, without a function call, lock or checks. Returns the timings and a line."""
    encode_into = msgspec.json.Encoder().encode_into
    now, write = datetime.now, os.write
    buf = bytearray()
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    means = []
    idx = 0
    for _ in range(calls // BATCH):
        start = clock()
        for _ in range(BATCH):
            encode_into(
                {"_idx": idx, "_timestamp": now(UTC), "step": idx, "loss": 0.5, "acc": 0.25}, buf
            )
            buf.append(10)
            write(fd, buf)
            idx += 1
        means.append((clock() - start) / BATCH / 1000)
    os.close(fd)
    return means, bytes(buf)


def bench_write(path: Path, line: bytes, calls: int, clock: Callable[[], int]) -> list[float]:
    """The system call alone: one os.write of an already encoded line, O_APPEND."""
    write = os.write
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    means = []
    for _ in range(calls // BATCH):
        start = clock()
        for _ in range(BATCH):
            write(fd, line)
        means.append((clock() - start) / BATCH / 1000)
    os.close(fd)
    return means


def bench_init(times: int, **capture: bool) -> list[float]:
    import whirr

    out = []
    for _ in range(times):
        start = time.perf_counter()
        run = whirr.init(system_metrics=False, **capture)
        out.append((time.perf_counter() - start) * 1000)
        run.finish()
    return out


def bench_import(times: int) -> list[float]:
    out = []
    for _ in range(times):
        proc = subprocess.run(
            [sys.executable, "-X", "importtime", "-c", "import whirr"],
            capture_output=True,
            text=True,
            check=True,
        )
        match = re.search(r"\|\s*(\d+) \| whirr$", proc.stderr, re.M)
        if match:
            out.append(int(match.group(1)) / 1000)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--calls", type=int, default=100_000)
    parser.add_argument("--inits", type=int, default=7)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "bench"
        root.mkdir()
        subprocess.run(["git", "init", "-q"], cwd=root, check=True)
        (root / "train.py").write_text("print('x')\n")
        subprocess.run(["git", "add", "."], cwd=root, check=True)
        subprocess.run(
            ["git", "-c", "user.email=b@b", "-c", "user.name=b", "commit", "-qm", "x"],
            cwd=root,
            check=True,
        )
        os.chdir(root)
        from whirr.project import init_project

        init_project(root)
        results: dict[str, dict[str, list[float]]] = {"wall": {}, "cpu": {}}
        # Interleaved (floor, write, whirr, floor, write, whirr) so a load spike hits all.
        for kind, clock in (
            ("wall", time.perf_counter_ns),
            ("cpu", time.thread_time_ns),
            ("wall", time.perf_counter_ns),
            ("cpu", time.thread_time_ns),
        ):
            got = results[kind]
            floor, line = bench_floor(root / "floor.jsonl", args.calls // 2, clock)
            got.setdefault("floor", []).extend(floor)
            got.setdefault("write", []).extend(
                bench_write(root / "write.jsonl", line, args.calls // 2, clock)
            )
            got.setdefault("log", []).extend(bench_log(args.calls // 2, clock))
        plain = bench_init(args.inits, capture_git=False, capture_pip=False)
        git = bench_init(args.inits, capture_git=True, capture_pip=False)
        full = bench_init(args.inits, capture_git=True, capture_pip=True)
    imports = bench_import(args.inits)
    for kind in ("wall", "cpu"):
        fig = {name: (statistics.median(v), min(v)) for name, v in results[kind].items()}
        print(
            f"{kind} time, us/call, median (best batch) of {len(results[kind]['log']):,} "
            f"batches of {BATCH:,}:"
        )
        print(f"  run.log()                          {fig['log'][0]:5.2f} ({fig['log'][1]:.2f})")
        print(
            f"  floor: encode same row + os.write  {fig['floor'][0]:5.2f} ({fig['floor'][1]:.2f})"
        )
        print(
            f"  os.write alone, {len(line)}-byte line       {fig['write'][0]:5.2f} "
            f"({fig['write'][1]:.2f})"
        )
        print(
            f"  run.log() above the floor: {fig['log'][0] - fig['floor'][0]:+.2f} us; "
            f"os.write alone is {fig['write'][0] / 2:.0%} of a 2 us budget"
        )
    print(
        f"machine load average while measuring: {os.getloadavg()[0]:.1f} "
        f"on {os.cpu_count()} CPUs (figures above 1 per CPU are inflated by other work)"
    )
    print(
        f"whirr.init(): {statistics.median(plain):.1f} ms without git/pip capture, "
        f"{statistics.median(git):.1f} ms with git, {statistics.median(full):.1f} ms with "
        "git + pip (requirements.txt is written on a background thread)"
    )
    if imports:
        print(
            f"import whirr: {statistics.median(imports):.1f} ms, best {min(imports):.1f} ms "
            "(python -X importtime)"
        )


if __name__ == "__main__":
    main()
