"""The Rust worker's cap on a job's output (``whirr-worker --max-output-size``, issue 19),
end to end: a real server, the real binary, real jobs.

Past the cap ``output.log`` holds the head, a marker line, and after the job's end a
second marker and the last quarter of the cap (the expected bytes are built here from
the shared spec, so both workers are held to the same text); output under the cap is
byte for byte the job's, stdout and stderr interleaved as written; ``whirr logs -f``
follows a running job; the log is complete when the job's end is reported; and a worker
that ships its files (no shared data dir) ships the capped log as it wrote it.
"""

from __future__ import annotations

import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from server_process import WHIRR, ServerProcess, wait_for
from shipping_env import ServerCopy, hide, no_ledgers
from worker_processes import WorkerProcs, worker_command

from whirr.client import WhirrClient
from whirr.worker.run_size import human_bytes

pytestmark = pytest.mark.skipif(sys.platform != "linux", reason="the worker is Linux-only")

MIB = 1 << 20

# Prints numbered lines past 3 MiB (pieces that do not end on line ends), the last one
# known; writes the same bytes to ``printed`` for the test to compare with.
BIG_JOB = """\
import sys
data = b"".join(b"line %07d\\n" % i for i in range(3 * 1024 * 1024 // 13 + 10))
data += b"the final line\\n"
with open("printed", "wb") as fh:
    fh.write(data)
for at in range(0, len(data), 5000):
    sys.stdout.buffer.write(data[at : at + 5000])
    sys.stdout.buffer.flush()
"""


def capped(data: bytes, cap: int) -> bytes:
    """What the spec says ``output.log`` holds for output ``data`` under ``cap``."""
    tail = min(MIB, cap // 4)
    head = cap - tail
    if len(data) <= head:
        return data
    out = data[:head] + (b"" if data[head - 1 : head] == b"\n" else b"\n")
    out += (
        f"[whirr] output passed its cap of {human_bytes(cap)} (--max-output-size): the rest "
        f"is dropped, except its last {human_bytes(tail)}, written when the job ends.\n"
    ).encode()
    kept = data[max(head, len(data) - tail) :]
    dropped = len(data) - head - len(kept)
    out += (
        f"[whirr] {human_bytes(dropped)} ({dropped} bytes) of output dropped; "
        f"its last {human_bytes(len(kept))} follow.\n"
    ).encode()
    return out + kept


@pytest.fixture
def server(tmp_path: Path) -> Iterator[ServerProcess]:
    proc = ServerProcess(tmp_path)
    yield proc
    proc.stop()


@pytest.fixture
def procs() -> Iterator[WorkerProcs]:
    started = WorkerProcs()
    yield started
    started.kill_all()


def start_rust_worker(
    server: ServerProcess, procs: WorkerProcs, data_dir: Path, *extra: str
) -> subprocess.Popen[bytes]:
    data_dir.mkdir(parents=True, exist_ok=True)
    command = worker_command("rust", server.url, data_dir, lease=30) + list(extra)
    return procs.spawn(command, server.env, server.logs_dir / "rust-worker.log")


def worker_log(server: ServerProcess) -> str:
    return (server.logs_dir / "rust-worker.log").read_text(errors="replace")


def finished(api: WhirrClient, job_id: int, server: ServerProcess) -> str:
    """Waits for the job's end; its run id (the job must have completed)."""
    wait_for(lambda: api.get_job(job_id).status in ("completed", "failed", "cancelled"), timeout=60)
    job = api.get_job(job_id)
    assert job.status == "completed", (job, worker_log(server))
    assert job.run_id is not None
    return job.run_id


class Follower:
    """``whirr logs -f`` in a process of its own; a thread collects what it prints."""

    def __init__(self, server: ServerProcess, job_id: int, cwd: Path) -> None:
        self.proc = subprocess.Popen(
            [*WHIRR, "logs", "-f", str(job_id)],
            cwd=cwd,
            env=server.env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
        )
        self.seen = bytearray()
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in iter(self.proc.stdout.readline, b""):
            self.seen += line

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait()
        self.reader.join(timeout=10)
        assert self.proc.stdout is not None
        self.proc.stdout.close()


def test_output_past_the_cap_keeps_head_and_tail_and_output_under_it_is_unchanged(
    server: ServerProcess, procs: WorkerProcs, tmp_path: Path
) -> None:
    work = tmp_path / "work"
    work.mkdir()
    (work / "big.py").write_text(BIG_JOB)
    blob = bytes(range(256)) * 1200 + b"\n"  # 300 KiB and a line end, under the cap
    (work / "blob").write_bytes(blob)
    small = "for i in 1 2 3; do echo out$i; echo err$i >&2; done; cat blob"
    follow = (
        "echo first; i=0; while [ ! -e go ] && [ $i -lt 600 ]; do sleep 0.05; "
        "i=$((i+1)); done; echo second"
    )
    with WhirrClient(server.url, token=server.token) as api:
        big_id = api.submit([sys.executable, "big.py"], str(work)).job_id
        small_id = api.submit(["sh", "-c", small], str(work)).job_id
        follow_id = api.submit(["sh", "-c", follow], str(work)).job_id
        start_rust_worker(server, procs, server.data_dir, "--max-output-size", "1M")

        runs = server.data_dir / "runs"
        # Read at once when the end is reported: the tail is in by then.
        big_log = (runs / finished(api, big_id, server) / "output.log").read_bytes()
        printed = (work / "printed").read_bytes()
        assert len(printed) > 3 * MIB
        assert big_log == capped(printed, MIB)
        assert big_log.endswith(b"line %07d\nthe final line\n" % (3 * MIB // 13 + 9))
        assert len(big_log) < MIB + 300  # the job's bytes and two marker lines

        small_log = (runs / finished(api, small_id, server) / "output.log").read_bytes()
        assert small_log == b"out1\nerr1\nout2\nerr2\nout3\nerr3\n" + blob

        wait_for(lambda: api.get_job(follow_id).status == "running", timeout=30)
        follower = Follower(server, follow_id, tmp_path)
        try:
            wait_for(lambda: b"first\n" in follower.seen, timeout=30)
            assert b"second" not in follower.seen
            (work / "go").touch()
            assert follower.proc.wait(timeout=30) == 0
            follower.reader.join(timeout=10)
            assert follower.seen.startswith(b"first\nsecond\n"), bytes(follower.seen)
        finally:
            follower.close()
        assert finished(api, follow_id, server)


def test_a_shipping_worker_ships_the_capped_log_as_it_wrote_it(
    server: ServerProcess, procs: WorkerProcs, tmp_path: Path
) -> None:
    work = tmp_path / "work"
    work.mkdir()
    (work / "big.py").write_text(BIG_JOB)
    data_c = tmp_path / "worker-c"
    with WhirrClient(server.url, token=server.token) as api:
        job_id = api.submit([sys.executable, "big.py"], str(work)).job_id
        worker = start_rust_worker(server, procs, data_c, "--max-output-size", "1M")
        run_id = finished(api, job_id, server)
        wait_for(lambda: no_ledgers(data_c), timeout=30)
    worker.terminate()
    assert worker.wait(timeout=20) == 0, worker_log(server)
    local = hide(data_c) / "runs" / run_id / "output.log"
    mine = local.read_bytes()
    assert mine == capped((work / "printed").read_bytes(), MIB)
    copy = ServerCopy(server)
    try:
        assert copy.log(job_id) == mine
    finally:
        copy.close()
