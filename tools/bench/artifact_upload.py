"""Artifact upload throughput and memory (issue 16 target: a 1 GB upload over loopback at
>= 50% of ``cp`` of the same file on this machine, the uploader's RSS growing <= 50 MB).

    .venv/bin/python tools/bench/artifact_upload.py [--size-mb 1024] [--dir /tmp]

Starts ``whirr server`` on a free loopback port (data dir under ``--dir``), makes a
``--size-mb`` file, then in the same run, alternately: ``cp`` of the file (to the same
filesystem the server writes to) and an upload by ``whirr.shipping.artifacts`` (streamed
from disk, sha256 computed on the way, then ``complete``: the server checks the sha256
and moves the file into the run's ``artifacts/``). The upload runs in a child process
that reports its own peak RSS (VmHWM) before and after; the server's growth is read
from ``/proc`` the same way. Prints the best of ``--rounds`` of each and the ratio.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

# Run as a script, this directory comes first on sys.path, and its queue.py (a bench)
# would shadow the standard library's queue that httpx needs.
if sys.path and Path(sys.path[0]).resolve() == Path(__file__).resolve().parent:
    del sys.path[0]

import httpx

WHIRR = [sys.executable, "-m", "whirr.cli.main"]
TOKEN = "bench-token"
MiB = 1 << 20

#: The uploading child: warms up (imports, a small upload), then uploads the big file and
#: prints its peak RSS before and after, and the upload's wall time.
CHILD = r"""
import json, sys, time
from pathlib import Path
from whirr.client import WhirrClient
from whirr.shipping.artifacts import upload_artifact_file

def peak():
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
url, token, run_id, attempt, warm, big, name = sys.argv[1:8]
with WhirrClient(url, token=token) as client:
    upload_artifact_file(client, run_id, int(attempt), Path(warm), name + ".warm")
    before = peak()
    start = time.perf_counter()
    result = upload_artifact_file(client, run_id, int(attempt), Path(big), name)
    wall = time.perf_counter() - start
print(json.dumps({"wall": wall, "before": before, "after": peak(), "size": result.stored.size}))
"""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def peak_rss(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    return 0


def make_file(path: Path, size_mb: int) -> None:
    block = os.urandom(16 * MiB)  # incompressible; repeated to keep set-up quick
    with path.open("wb") as fh:
        left = size_mb * MiB
        while left > 0:
            fh.write(block[: min(left, len(block))])
            left -= len(block)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size-mb", type=int, default=1024)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--dir", default=None, help="where to put the files (default: /tmp)")
    args = parser.parse_args()

    root = Path(tempfile.mkdtemp(prefix="whirr-bench-artifacts-", dir=args.dir))
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    data = root / "server"
    log = (root / "server.log").open("wb")
    server = subprocess.Popen(
        [*WHIRR, "server", "-p", str(port), "-d", str(data), "--token", TOKEN],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(f"{url}/api/v1/health", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline or server.poll() is not None:
                raise SystemExit(f"the server did not start; see {root / 'server.log'}")
            time.sleep(0.1)
        from whirr.client import WhirrClient

        with WhirrClient(url, token=TOKEN) as client:
            job = client.submit(["true"], "/tmp").job_id
            claimed = client.claim("bench")
            assert claimed is not None and claimed.id == job
            client.started(job, "bench", claimed.attempt, os.getpid())
            run_id, attempt = claimed.run_id, claimed.attempt

        big = root / "big.bin"
        warm = root / "warm.bin"
        print(f"making a {args.size_mb} MiB file in {root} ...", flush=True)
        make_file(big, args.size_mb)
        make_file(warm, 4)
        copy_dir = data / "copies"
        copy_dir.mkdir(parents=True)
        cp_times: list[float] = []
        uploads: list[dict[str, float]] = []
        server_growth = 0
        for n in range(args.rounds):
            target = copy_dir / f"copy-{n}.bin"
            start = time.perf_counter()
            subprocess.run(["cp", str(big), str(target)], check=True)
            cp_times.append(time.perf_counter() - start)
            target.unlink()

            server_before = peak_rss(server.pid)
            child = subprocess.run(
                [
                    sys.executable,
                    "-c",
                    CHILD,
                    url,
                    TOKEN,
                    run_id,
                    str(attempt),
                    str(warm),
                    str(big),
                    f"big-{n}.bin",
                ],
                check=True,
                capture_output=True,
                text=True,
            )
            server_growth = max(server_growth, peak_rss(server.pid) - server_before)
            uploads.append(json.loads(child.stdout))
            # Keep the disk from filling: the stored copy is not needed any more.
            (data / "runs" / run_id / "artifacts" / f"big-{n}.bin").unlink()

        size = args.size_mb * MiB
        cp_best = min(cp_times)
        up_best = min(u["wall"] for u in uploads)
        growth = max(u["after"] - u["before"] for u in uploads)
        print(f"file: {args.size_mb} MiB, {args.rounds} rounds, loopback, one machine")
        print(f"  cp      best {cp_best:6.2f} s  ({size / cp_best / MiB:7.0f} MiB/s)")
        print(f"  upload  best {up_best:6.2f} s  ({size / up_best / MiB:7.0f} MiB/s)")
        print(f"  upload / cp throughput: {cp_best / up_best:.2f}  (target >= 0.5)")
        print(f"  uploader peak RSS growth: {growth / MiB:.1f} MiB  (target <= 50)")
        print(f"  server peak RSS growth:   {server_growth / MiB:.1f} MiB")
        print("  all rounds (s): cp " + ", ".join(f"{t:.2f}" for t in cp_times))
        print("                  upload " + ", ".join(f"{u['wall']:.2f}" for u in uploads))
    finally:
        server.terminate()
        try:
            server.wait(timeout=10)
        except subprocess.TimeoutExpired:
            server.kill()
        log.close()
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
