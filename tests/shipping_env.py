"""Workers on machines of their own, for the shipping tests (issue 16).

Each worker gets a data dir that is *not* the server's (no shared filesystem): what a job
writes there reaches the server only through the HTTP API. Helpers here start the Python
and the Rust worker on such a dir, read the worker's copy of a run's files, and read the
server's copy through its routes only (never its disk), so a test compares the two.
The job scripts and scenarios that the Python and the Rust worker's shipping tests
(tests/e2e/test_shipping_worker.py, test_rust_shipping.py) both run live here too.
"""

from __future__ import annotations

import hashlib
import json
import signal
import subprocess
import sys
import textwrap
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from server_process import WHIRR, ServerProcess, stop_process, wait_for
from worker_processes import WorkerProcs, worker_command

from whirr.client import WhirrClient

#: The append streams a worker ships by byte offset.
STREAMS = ("output.log", "metrics.jsonl", "system.jsonl")


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def file_sha(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


class Workers:
    """Worker processes started by a test; ``close`` kills the ones still running."""

    def __init__(self, server: ServerProcess) -> None:
        self.server = server
        self.procs = WorkerProcs()

    def start(
        self,
        kind: str,
        data_dir: Path,
        *,
        url: str | None = None,
        lease: float = 30,
        worker_id: str | None = None,
    ) -> subprocess.Popen[bytes]:
        url = url or self.server.url
        data_dir.mkdir(parents=True, exist_ok=True)
        env = {**self.server.env, "WHIRR_SERVER_URL": url}
        return self.procs.spawn(
            worker_command(kind, url, data_dir, lease=lease, worker_id=worker_id),
            env,
            self.server.logs_dir / f"{kind}-worker.log",
        )

    def stop_all(self) -> None:
        """SIGTERM every worker still running (SIGKILL past 10 s) and wait for it."""
        for proc in self.procs.procs:
            stop_process(proc)

    def output(self) -> str:
        logs = sorted(self.server.logs_dir.glob("*-worker.log"))
        return "\n".join(f"--- {p.name}\n{p.read_text(errors='replace')}" for p in logs)

    def close(self) -> None:
        self.procs.kill_all()


class ServerCopy:
    """A run's files as the server has them, read through the API."""

    def __init__(self, server: ServerProcess) -> None:
        self.server = server
        self.http = httpx.Client(
            base_url=f"{server.url}/api/v1", headers=server.headers(), timeout=60
        )

    def close(self) -> None:
        self.http.close()

    def files(self, run_id: str) -> dict[str, Any]:
        """``GET /runs/{id}/files``: the mode and each file's state."""
        resp = self.http.get(f"/runs/{run_id}/files")
        assert resp.status_code == 200, (resp.status_code, resp.text)
        body: dict[str, Any] = resp.json()
        return body

    def state(self, run_id: str, name: str) -> str | None:
        entry = self.files(run_id)["files"].get(name)
        return None if entry is None else str(entry["state"])

    def size(self, run_id: str, name: str) -> int:
        """The server's size of ``name``; 0 before the run exists there (its worker has
        not reported the start yet: a 404 naming the run, nothing else)."""
        resp = self.http.get(f"/runs/{run_id}/files")
        if resp.status_code == 404 and f"no run '{run_id}'" in resp.text:
            return 0
        assert resp.status_code == 200, (resp.status_code, resp.text)
        entry = resp.json()["files"].get(name)
        return 0 if entry is None else int(entry["size"])

    def log(self, job_id: int) -> bytes:
        resp = self.http.get(f"/jobs/{job_id}/logs")
        assert resp.status_code == 200, (resp.status_code, resp.text)
        return resp.content

    def log_so_far(self, job_id: int) -> bytes:
        """The job's log on the server; empty while nothing arrived (404 pending)."""
        resp = self.http.get(f"/jobs/{job_id}/logs")
        assert resp.status_code in (200, 404), (resp.status_code, resp.text)
        return resp.content if resp.status_code == 200 else b""

    def raw(self, run_id: str, name: str) -> bytes:
        """``metrics.jsonl``/``system.jsonl`` through ``/runs/{id}/raw``, page by page."""
        out = bytearray()
        file = name.removesuffix(".jsonl")  # the route names them metrics and system
        for _ in range(100_000):
            resp = self.http.get(f"/runs/{run_id}/raw/{file}", params={"offset": len(out)})
            assert resp.status_code == 200, (resp.status_code, resp.text)
            out += resp.content
            if not resp.content or len(out) >= int(resp.headers["X-Whirr-Size"]):
                return bytes(out)
        raise AssertionError("the raw pages never ended")

    def stream(self, run_id: str, job_id: int, name: str) -> bytes:
        """One append stream's bytes on the server."""
        return self.log(job_id) if name == "output.log" else self.raw(run_id, name)


def hide(data_dir: Path) -> Path:
    """Move a worker's data dir away (its workers stopped): everything on one machine in
    a test, the server could otherwise read a run's files at the path the worker
    reported. Returns where the files now are, for the test to compare with."""
    gone = data_dir.with_name(data_dir.name + "-moved")
    data_dir.rename(gone)
    return gone


def json_lines(data: bytes) -> list[dict[str, Any]]:
    return [json.loads(line) for line in data.splitlines() if line.strip()]


def no_ledgers(data_dir: Path) -> bool:
    """No shipping ledger left in a worker's data dir: all it had to ship arrived."""
    return not list((data_dir / "shipping").glob("*.json"))


@pytest.fixture(name="workers")
def workers_fixture(server: ServerProcess) -> Iterator[Workers]:
    w = Workers(server)
    yield w
    w.close()


@pytest.fixture(name="copy")
def copy_fixture(server: ServerProcess) -> Iterator[ServerCopy]:
    c = ServerCopy(server)
    yield c
    c.close()


# -- the jobs ---------------------------------------------------------------------------
#: Metric rows a shipped job logs in each of its two bursts.
ROWS = 200


def shipped_job(name: str, artifacts: str) -> str:
    """A job script: prints, logs metrics and system samples, sets a summary, runs
    ``artifacts`` (code that saves the job's artifacts). With an argument it then waits
    for ``go`` before a second burst, and after it for ``end`` (which never comes: the
    test kills its worker, whose reaper kills the job)."""
    return f"""\
import os, sys, time, whirr
with whirr.init(name="{name}", config={{"lr": 0.1}}, system_metrics_interval=0.05,
                capture_git=False, capture_pip=False) as run:
    for i in range({ROWS}):
        run.log({{"loss": 1.0 / (i + 1)}}, step=i)
        if i % 20 == 0:
            print(f"step {{i}} ünïcode", flush=True)
    system = run.run_dir / "system.jsonl"
    for _ in range(400):
        if system.exists() and system.read_bytes().count(b"\\n") >= 3:
            break
        time.sleep(0.05)
    run.summary({{"best": 1.0 / {ROWS}}})
{textwrap.indent(artifacts, "    ")}\
    print("first half done", flush=True)
    if len(sys.argv) > 1:
        for _ in range(1200):  # at most ~60 s
            if os.path.exists("go"):
                break
            time.sleep(0.05)
    for i in range({ROWS}, {2 * ROWS}):
        run.log({{"loss": 1.0 / (i + 1)}}, step=i)
    print("done", run.run_id, flush=True)
    if len(sys.argv) > 1:
        for _ in range(1200):
            if os.path.exists("end"):
                break
            time.sleep(0.05)
"""


# Attempt 1 (on box B) logs 50 rows, waits for ``go`` and fails; attempt 2 (on box C, a
# fresh data dir) logs 50 more and succeeds.
RETRIED = """\
import os, sys, time, whirr
first = "worker-b" in os.environ["WHIRR_RUN_DIR"]
with whirr.init(name="retried", system_metrics=False, capture_git=False,
                capture_pip=False) as run:
    for i in range(50):
        run.log({"x": i})
    print("attempt on", "B" if first else "C", flush=True)
    if first:
        for _ in range(1200):
            if os.path.exists("go"):
                break
            time.sleep(0.05)
        sys.exit(1)
"""


def job_dir(tmp_path: Path, script: str) -> Path:
    """``tmp_path/work`` holding ``script`` as ``job.py``: a job's working directory."""
    path = tmp_path / "work"
    path.mkdir()
    (path / "job.py").write_text(script)
    return path


# -- the scenarios both workers run -----------------------------------------------------
def on_the_head_node(server: ServerProcess, cwd: Path, *args: str) -> bytes:
    """A ``whirr`` command run in ``cwd`` against the server (not in a worker's data
    dir); its stdout, once it exited 0."""
    done = subprocess.run([*WHIRR, *args], env=server.env, cwd=cwd, capture_output=True, timeout=60)
    assert done.returncode == 0, done.stderr.decode()
    return done.stdout


def wait_completed(api: WhirrClient, job_id: int, workers: Workers) -> None:
    wait_for(
        lambda: api.get_job(job_id).status in ("completed", "failed", "cancelled"),
        timeout=120,
        interval=0.1,
    )
    assert api.get_job(job_id).status == "completed", workers.output()


def ship_a_job(
    kind: str,
    data_dir: Path,
    worker_id: str,
    api: WhirrClient,
    workers: Workers,
    copy: ServerCopy,
    cwd: Path,
) -> tuple[int, str]:
    """A ``kind`` worker on ``data_dir`` runs ``job.py`` in ``cwd`` to its end, reported
    after the last upload: the streams are complete already. Returns the job and its run."""
    workers.start(kind, data_dir, worker_id=worker_id)
    job_id = api.submit([sys.executable, "job.py"], str(cwd)).job_id
    wait_completed(api, job_id, workers)
    run_id = api.get_job(job_id).run_id
    assert run_id is not None
    files = copy.files(run_id)
    assert files["mode"] == "shipped", files
    for name in STREAMS:
        assert files["files"][name]["state"] == "complete", (name, files)
    return job_id, run_id


def same_files(copy: ServerCopy, local: Path, run_id: str, job_id: int) -> None:
    """The server's copy of each stream and of meta.json is the worker's."""
    for name in STREAMS:
        mine = (local / name).read_bytes()
        assert mine, name
        theirs = copy.stream(run_id, job_id, name)
        assert sha(theirs) == sha(mine), (name, len(theirs), len(mine))
    meta = (local / "meta.json").read_bytes()
    resp = copy.http.get(f"/runs/{run_id}/artifacts/meta.json")
    assert resp.status_code == 200, resp.text
    assert resp.content == meta


def a_killed_workers_successor_ships_the_rest(
    kind: str,
    data_dir: Path,
    worker_id: str,
    api: WhirrClient,
    workers: Workers,
    copy: ServerCopy,
    cwd: Path,
    stop: Callable[[], None],
) -> str:
    """A ``kind`` worker ``worker_id`` on ``data_dir`` runs ``job.py wait`` (a
    ``shipped_job``) in ``cwd``: frozen once the first half is on the server and killed
    while the job wrote the second, it leaves a ledger; its successor (``worker_id`` 2) on
    ``data_dir`` ships the rest, no gap and no duplicate. ``stop`` stops the workers
    before the files are compared. Returns the job's run."""
    first = workers.start(kind, data_dir, worker_id=worker_id, lease=60)
    job_id = api.submit([sys.executable, "job.py", "wait"], str(cwd)).job_id
    wait_for(lambda: api.get_job(job_id).run_id is not None)
    run_id = api.get_job(job_id).run_id
    assert run_id is not None
    local = data_dir / "runs" / run_id
    # The first half is on the server (shipped live). Then the worker freezes (its
    # shipper with it) while the job writes the second half, and is killed: its reaper
    # kills the job, and the second half never left the machine.
    wait_for(lambda: b"first half done" in copy.log_so_far(job_id), timeout=60, interval=0.1)
    first.send_signal(signal.SIGSTOP)
    (cwd / "go").touch()
    # The job's own metrics.jsonl (its output.log goes through the frozen worker's pipe:
    # nothing of the second half reaches that file, nor would it survive the kill).
    second_half = 2 * ROWS
    wait_for(lambda: (local / "metrics.jsonl").read_bytes().count(b"\n") >= second_half, timeout=60)
    first.send_signal(signal.SIGKILL)
    first.wait()
    assert not no_ledgers(data_dir), "the killed worker left a ledger"
    assert b"done job-" not in copy.log_so_far(job_id)

    workers.start(kind, data_dir, worker_id=f"{worker_id}2", lease=60)
    # The successor resumes the ledger: everything arrives, no gap, no duplicate.
    wait_for(lambda: no_ledgers(data_dir), timeout=60)
    stop()
    local = hide(data_dir) / "runs" / run_id
    for name in STREAMS:
        mine = (local / name).read_bytes()
        assert sha(copy.stream(run_id, job_id, name)) == sha(mine), name
    rows = json_lines(copy.stream(run_id, job_id, "metrics.jsonl"))
    assert [r["_idx"] for r in rows] == list(range(2 * ROWS))
    return run_id


def attempt_two_on_a_fresh_data_dir_continues_idx(
    kind: str,
    server: ServerProcess,
    workers: Workers,
    copy: ServerCopy,
    tmp_path: Path,
    stop: Callable[[], None],
) -> None:
    """``RETRIED``: attempt 1 on a ``kind`` worker on box B's data dir, drained, fails;
    attempt 2 on a worker on box C's fresh data dir continues ``_idx`` after it, its
    seed row (attempt 1's last) never shipped back. ``stop`` stops the workers before
    the files are compared."""
    cwd = job_dir(tmp_path, RETRIED)
    data_b, data_c = tmp_path / "worker-b", tmp_path / "worker-c"
    box_b = workers.start(kind, data_b, worker_id="box-b")
    with WhirrClient(server.url, token=server.token) as api:
        job_id = api.submit([sys.executable, "job.py"], str(cwd), retries=1, retry_delay=0).job_id
        wait_for(lambda: b"attempt on B" in copy.log_so_far(job_id), timeout=60, interval=0.1)
        box_b.send_signal(signal.SIGTERM)  # drain: it finishes attempt 1, claims nothing more
        (cwd / "go").touch()
        box_b.wait(60)
        assert api.get_job(job_id).status == "queued", workers.output()
        workers.start(kind, data_c, worker_id="box-c")
        wait_completed(api, job_id, workers)
        run_id = api.get_job(job_id).run_id
        assert api.get_job(job_id).attempt == 2
        wait_for(lambda: no_ledgers(data_c), timeout=30)
    stop()
    rows = json_lines(copy.stream(run_id, job_id, "metrics.jsonl"))
    assert [r["_idx"] for r in rows] == list(range(100))
    assert [r["x"] for r in rows] == list(range(50)) * 2
    # Box C's file starts with the seed (attempt 1's last row), never shipped back.
    local_c = json_lines((hide(data_c) / "runs" / run_id / "metrics.jsonl").read_bytes())
    assert [r["_idx"] for r in local_c] == list(range(49, 100))
    assert copy.log_so_far(job_id).count(b"attempt on") == 2
