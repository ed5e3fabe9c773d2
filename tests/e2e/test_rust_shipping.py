"""The Rust worker ships its jobs' run files (issue 16), end to end with real processes.

A server on data dir A and ``whirr-worker`` on data dir C (no shared directory): after a
job completes, the server's ``output.log``, ``metrics.jsonl``, ``system.jsonl``,
``meta.json`` and artifacts are the worker's, byte for byte, and ``whirr logs`` and
``whirr show --server`` on the head node see them. A worker SIGKILLed mid-job leaves a
ledger that the next worker on that data dir ships; attempt 2 of a job on a fresh data
dir continues ``_idx``; a worker whose data dir *is* the server's ships nothing. (All on
one machine: before reading the server's copy a test moves the worker's data dir away,
so the server cannot be reading the worker's files in place.)
"""

from __future__ import annotations

import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from server_process import WHIRR, ServerProcess, wait_for
from shipping_env import STREAMS, ServerCopy, Workers, file_sha, hide, json_lines, sha

from whirr.client import WhirrClient

pytestmark = pytest.mark.skipif(sys.platform != "linux", reason="the worker is Linux-only")

ROWS = 200
ARTIFACT_BYTES = 20 * 1024 * 1024 + 12_345  # more than one upload piece (16 MiB)

# Prints, logs metrics and system samples, sets a summary, saves two artifacts (one in a
# subdirectory). With an argument it then waits for ``go`` before a second burst, and
# after it for ``end`` (which never comes: the test kills its worker, whose reaper
# kills the job).
JOB = f"""\
import os, sys, time, whirr
with whirr.init(name="rust-shipped", config={{"lr": 0.1}}, system_metrics_interval=0.05,
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
    with open("model.bin", "wb") as fh:
        fh.write(os.urandom({ARTIFACT_BYTES}))
    run.save_artifact("model.bin", name="ckpt/model.bin")
    with open("notes.txt", "w") as fh:
        fh.write("small")
    run.save_artifact("notes.txt")
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


@pytest.fixture
def workers(server: ServerProcess) -> Iterator[Workers]:
    w = Workers(server)
    yield w
    w.close()


@pytest.fixture
def copy(server: ServerProcess) -> Iterator[ServerCopy]:
    c = ServerCopy(server)
    yield c
    c.close()


def work(tmp_path: Path) -> Path:
    path = tmp_path / "work"
    path.mkdir()
    (path / "job.py").write_text(JOB)
    return path


def wait_completed(api: WhirrClient, job_id: int, workers: Workers) -> None:
    wait_for(
        lambda: api.get_job(job_id).status in ("completed", "failed", "cancelled"),
        timeout=120,
        interval=0.1,
    )
    assert api.get_job(job_id).status == "completed", workers.output()


def no_ledgers(data_dir: Path) -> bool:
    return not list((data_dir / "shipping").glob("*.json"))


def server_log(copy: ServerCopy, job_id: int) -> bytes:
    """The job's log on the server; empty while nothing arrived (404 pending)."""
    resp = copy.http.get(f"/jobs/{job_id}/logs")
    assert resp.status_code in (200, 404), (resp.status_code, resp.text)
    return resp.content if resp.status_code == 200 else b""


def head(server: ServerProcess, cwd: Path, *args: str) -> str:
    """A ``whirr`` command on the head node, against the server; its stdout."""
    done = subprocess.run([*WHIRR, *args], env=server.env, cwd=cwd, capture_output=True, timeout=60)
    assert done.returncode == 0, done.stderr.decode()
    return done.stdout.decode()


def test_rust_worker_ships_every_run_file_and_reports_the_end_after(
    server: ServerProcess, workers: Workers, copy: ServerCopy, tmp_path: Path
) -> None:
    data_c = tmp_path / "worker-c"
    workers.start("rust", data_c, worker_id="box-c")
    with WhirrClient(server.url, token=server.token) as api:
        job_id = api.submit([sys.executable, "job.py"], str(work(tmp_path))).job_id
        wait_completed(api, job_id, workers)
        run_id = api.get_job(job_id).run_id
        assert run_id is not None
        # The end is reported after the last upload: the streams are complete already.
        files = copy.files(run_id)
        assert files["mode"] == "shipped", files
        for name in STREAMS:
            assert files["files"][name]["state"] == "complete", (name, files)
        wait_for(lambda: no_ledgers(data_c), timeout=30)
        # The final sizes carried the whole files too: the server says they are whole.
        assert copy.state(run_id, "meta.json") == "complete", copy.files(run_id)
        workers.stop_all()
        local = hide(data_c) / "runs" / run_id
        for name in STREAMS:
            mine = (local / name).read_bytes()
            assert mine, name
            theirs = copy.stream(run_id, job_id, name)
            assert sha(theirs) == sha(mine), (name, len(theirs), len(mine))
        assert len(json_lines((local / "metrics.jsonl").read_bytes())) == 2 * ROWS
        resp = copy.http.get(f"/runs/{run_id}/artifacts/meta.json")
        assert resp.status_code == 200, resp.text
        assert resp.content == (local / "meta.json").read_bytes()
        # Both artifacts were uploaded (streamed, sha256-checked) and recorded.
        model = api.read_artifact(run_id, "ckpt/model.bin")
        assert len(model) == ARTIFACT_BYTES
        assert sha(model) == file_sha(local / "artifacts/ckpt/model.bin")
        assert api.read_artifact(run_id, "notes.txt") == b"small"
        assert sorted(a.path for a in api.get_run(run_id).artifacts) == [
            "ckpt/model.bin",
            "notes.txt",
        ]

    elsewhere = tmp_path / "head"
    elsewhere.mkdir()
    logs = subprocess.run(
        [*WHIRR, "logs", str(job_id), "--server", server.url],
        env=server.env,
        cwd=elsewhere,
        capture_output=True,
        timeout=60,
    )
    assert logs.returncode == 0, logs.stderr.decode()
    assert logs.stdout == (local / "output.log").read_bytes()
    shown = head(server, elsewhere, "show", run_id, "--server", server.url)
    assert f"Last metrics ({2 * ROWS} rows)" in shown, shown
    assert f"step  {2 * ROWS - 1}" in shown, shown
    # Where the files really are: shipped from the worker's dir to the server's copy.
    assert f"/runs/{run_id} to the server (complete)" in shown, shown
    assert "Warning" not in shown, shown
    assert "ckpt/model.bin" in shown, shown


def test_a_killed_rust_workers_successor_ships_the_rest(
    server: ServerProcess, workers: Workers, copy: ServerCopy, tmp_path: Path
) -> None:
    data_c = tmp_path / "worker-c"
    cwd = work(tmp_path)
    first = workers.start("rust", data_c, worker_id="box-c", lease=60)
    with WhirrClient(server.url, token=server.token) as api:
        job_id = api.submit([sys.executable, "job.py", "wait"], str(cwd)).job_id
        wait_for(lambda: api.get_job(job_id).run_id is not None)
        run_id = api.get_job(job_id).run_id
        assert run_id is not None
        local = data_c / "runs" / run_id
        # The first half is on the server (shipped live). Then the worker freezes (its
        # shipper with it) while the job writes the second half, and is killed: its
        # reaper kills the job, and the second half never left the machine.
        wait_for(lambda: b"first half done" in server_log(copy, job_id), timeout=60, interval=0.1)
        first.send_signal(signal.SIGSTOP)
        (cwd / "go").touch()
        wait_for(lambda: b"done job-" in (local / "output.log").read_bytes(), timeout=60)
        first.send_signal(signal.SIGKILL)
        first.wait()
        assert not no_ledgers(data_c), "the killed worker left a ledger"
        assert b"done job-" not in server_log(copy, job_id)

        workers.start("rust", data_c, worker_id="box-c2", lease=60)
        # The successor resumes the ledger: everything arrives, no gap, no duplicate.
        wait_for(lambda: no_ledgers(data_c), timeout=60)
        workers.stop_all()
        local = hide(data_c) / "runs" / run_id
        for name in STREAMS:
            mine = (local / name).read_bytes()
            assert sha(copy.stream(run_id, job_id, name)) == sha(mine), name
        rows = json_lines(copy.stream(run_id, job_id, "metrics.jsonl"))
        assert [r["_idx"] for r in rows] == list(range(2 * ROWS))
        assert api.read_artifact(run_id, "notes.txt") == b"small"


# Attempt 1 (box B) logs 50 rows, waits for ``go`` and fails; attempt 2 (box C, a fresh
# data dir) logs 50 more and succeeds.
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


def test_attempt_two_on_a_fresh_rust_worker_continues_idx(
    server: ServerProcess, workers: Workers, copy: ServerCopy, tmp_path: Path
) -> None:
    cwd = tmp_path / "work"
    cwd.mkdir()
    (cwd / "job.py").write_text(RETRIED)
    data_b, data_c = tmp_path / "worker-b", tmp_path / "worker-c"
    box_b = workers.start("rust", data_b, worker_id="box-b")
    with WhirrClient(server.url, token=server.token) as api:
        job_id = api.submit([sys.executable, "job.py"], str(cwd), retries=1, retry_delay=0).job_id
        wait_for(lambda: b"attempt on B" in server_log(copy, job_id), timeout=60, interval=0.1)
        box_b.send_signal(signal.SIGTERM)  # drain: it finishes attempt 1, claims nothing more
        (cwd / "go").touch()
        box_b.wait(60)
        assert api.get_job(job_id).status == "queued", workers.output()
        workers.start("rust", data_c, worker_id="box-c")
        wait_completed(api, job_id, workers)
        run_id = api.get_job(job_id).run_id
        assert api.get_job(job_id).attempt == 2
        wait_for(lambda: no_ledgers(data_c), timeout=30)
    workers.stop_all()
    rows = json_lines(copy.stream(run_id, job_id, "metrics.jsonl"))
    assert [r["_idx"] for r in rows] == list(range(100))
    assert [r["x"] for r in rows] == list(range(50)) * 2
    # Box C's file starts with the seed (attempt 1's last row), never shipped back.
    local_c = json_lines((hide(data_c) / "runs" / run_id / "metrics.jsonl").read_bytes())
    assert [r["_idx"] for r in local_c] == list(range(49, 100))
    assert server_log(copy, job_id).count(b"attempt on") == 2


def test_a_rust_worker_on_the_servers_data_dir_ships_nothing(
    server: ServerProcess, workers: Workers, copy: ServerCopy, tmp_path: Path
) -> None:
    workers.start("rust", server.data_dir, worker_id="shared-box")
    with WhirrClient(server.url, token=server.token) as api:
        job_id = api.submit([sys.executable, "job.py"], str(work(tmp_path))).job_id
        wait_completed(api, job_id, workers)
        run_id = api.get_job(job_id).run_id
        assert run_id is not None
    workers.stop_all()
    assert copy.files(run_id)["mode"] == "shared"
    # No ledger, no upload: the files are the ones the job wrote in place.
    assert no_ledgers(server.data_dir)
    assert b"done job-" in copy.log(job_id)
    assert (server.data_dir / "runs" / run_id / "metrics.jsonl").stat().st_size > 0
    out = workers.output()
    assert "run files shared" in out, out
    assert "shipping" not in out, out
