"""The Python worker ships its jobs' run files (issue 16), end to end with real processes.

A server on data dir A and a Python worker on data dir B (no shared directory): after a
job completes, the server's ``output.log``, ``metrics.jsonl``, ``system.jsonl`` and
``meta.json`` are the worker's, byte for byte, and ``whirr logs N`` on the head node shows
the output. A worker SIGKILLed mid-job leaves a ledger; a new worker on the same data dir
ships the rest. A worker whose data dir *is* the server's writes in place and ships
nothing. (All on one machine: before reading the server's copy, a test moves the worker's
data dir away, so the server cannot be reading the worker's files in place.)
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from server_process import WHIRR, ServerProcess, wait_for
from shipping_env import STREAMS, ServerCopy, Workers, hide, json_lines, sha

from whirr.client import WhirrClient

pytestmark = pytest.mark.skipif(sys.platform != "linux", reason="the worker is Linux-only")

ROWS = 200

# Prints, logs metrics and system samples, sets a summary. With an argument it then waits
# for ``go`` before a second burst, and after it for ``end`` (which never comes: the test
# kills its worker, whose reaper kills the job).
JOB = f"""\
import os, sys, time, whirr
with whirr.init(name="shipped", config={{"lr": 0.1}}, system_metrics_interval=0.05,
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
        fh.write(os.urandom(300_000))
    run.save_artifact("model.bin")
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


def wait_ended(api: WhirrClient, job_id: int, workers: Workers) -> None:
    wait_for(
        lambda: api.get_job(job_id).status in ("completed", "failed", "cancelled"),
        timeout=120,
        interval=0.1,
    )
    assert api.get_job(job_id).status == "completed", workers.output()


def server_stream(copy: ServerCopy, run_id: str, job_id: int, name: str) -> bytes:
    """One stream's bytes on the server: the job's log, or the raw JSONL pages."""
    if name == "output.log":
        return copy.log(job_id)
    out = bytearray()
    for _ in range(10_000):
        resp = copy.http.get(
            f"/runs/{run_id}/raw/{name.removesuffix('.jsonl')}", params={"offset": len(out)}
        )
        assert resp.status_code == 200, (resp.status_code, resp.text)
        out += resp.content
        if not resp.content or len(out) >= int(resp.headers["X-Whirr-Size"]):
            return bytes(out)
    raise AssertionError("the raw pages never ended")


def server_log(copy: ServerCopy, job_id: int) -> bytes:
    """The job's log on the server; empty while nothing arrived (404 pending)."""
    resp = copy.http.get(f"/jobs/{job_id}/logs")
    assert resp.status_code in (200, 404), (resp.status_code, resp.text)
    return resp.content if resp.status_code == 200 else b""


def same_files(copy: ServerCopy, local: Path, run_id: str, job_id: int) -> None:
    """The server's copy of each stream and of meta.json is the worker's."""
    for name in STREAMS:
        mine = (local / name).read_bytes()
        assert mine, name
        theirs = server_stream(copy, run_id, job_id, name)
        assert sha(theirs) == sha(mine), (name, len(theirs), len(mine))
    meta = (local / "meta.json").read_bytes()
    resp = copy.http.get(f"/runs/{run_id}/artifacts/meta.json")
    assert resp.status_code == 200, resp.text
    assert resp.content == meta


def test_worker_ships_every_run_file_and_reports_the_end_after(
    server: ServerProcess, workers: Workers, copy: ServerCopy, tmp_path: Path
) -> None:
    data_b = tmp_path / "worker-b"
    workers.start("python", data_b, worker_id="box-b")
    with WhirrClient(server.url, token=server.token) as api:
        job_id = api.submit([sys.executable, "job.py"], str(work(tmp_path))).job_id
        wait_ended(api, job_id, workers)
        run_id = api.get_job(job_id).run_id
        # The end is reported after the last upload: the streams are complete already.
        files = copy.files(run_id)
        assert files["mode"] == "shipped", files
        for name in STREAMS:
            assert files["files"][name]["state"] == "complete", (name, files)
        # meta.json gets the job's final state after the end is reported: shipped just
        # after, and then no ledger is left.
        wait_for(lambda: not list((data_b / "shipping").glob("*.json")))
        files = copy.files(run_id)["files"]
        for name in (*STREAMS, "meta.json", "config.json"):
            assert files[name]["state"] == "complete", (name, files)
        workers.close()
        local = hide(data_b) / "runs" / run_id
        same_files(copy, local, run_id, job_id)
        assert len(json_lines((local / "metrics.jsonl").read_bytes())) == 2 * ROWS
        # The artifact was uploaded and recorded (the job itself recorded nothing: the
        # server could not have seen the file).
        mine = (local / "artifacts/model.bin").read_bytes()
        assert api.read_artifact(run_id, "model.bin") == mine
        assert [a.path for a in api.get_run(run_id).artifacts] == ["model.bin"]

    logs = subprocess.run(
        [*WHIRR, "logs", str(job_id), "--server", server.url],
        env=server.env,
        cwd=tmp_path,
        capture_output=True,
        timeout=60,
    )
    assert logs.returncode == 0, logs.stderr.decode()
    assert logs.stdout == (local / "output.log").read_bytes()
    assert "done job-" in logs.stdout.decode()


def test_a_killed_workers_successor_ships_the_rest(
    server: ServerProcess, workers: Workers, copy: ServerCopy, tmp_path: Path
) -> None:
    data_b = tmp_path / "worker-b"
    cwd = work(tmp_path)
    first = workers.start("python", data_b, worker_id="box-b", lease=60)
    with WhirrClient(server.url, token=server.token) as api:
        job_id = api.submit([sys.executable, "job.py", "wait"], str(cwd)).job_id
        wait_for(lambda: api.get_job(job_id).run_id is not None)
        run_id = api.get_job(job_id).run_id
        local = data_b / "runs" / run_id
        # The first half is on the server (shipped live). Then the worker freezes (its
        # shipper with it) while the job writes the second half, and is killed: its
        # reaper kills the job, the second half never left the machine.
        wait_for(lambda: b"first half done" in server_log(copy, job_id), timeout=60, interval=0.1)
        first.send_signal(signal.SIGSTOP)
        (cwd / "go").touch()
        wait_for(lambda: b"done job-" in (local / "output.log").read_bytes(), timeout=60)
        first.send_signal(signal.SIGKILL)
        first.wait()
        assert list((data_b / "shipping").glob("*.json")), "the killed worker left a ledger"
        assert b"done job-" not in server_log(copy, job_id)

        workers.start("python", data_b, worker_id="box-b2", lease=60)
        # The successor resumes the ledger: everything arrives, no gap, no duplicate.
        wait_for(lambda: not list((data_b / "shipping").glob("*.json")), timeout=60)
        workers.close()
        local = hide(data_b) / "runs" / run_id
        for name in STREAMS:
            mine = (local / name).read_bytes()
            assert sha(server_stream(copy, run_id, job_id, name)) == sha(mine), name
        rows = json_lines(server_stream(copy, run_id, job_id, "metrics.jsonl"))
        assert [r["_idx"] for r in rows] == list(range(2 * ROWS))


def test_shared_data_dir_ships_nothing(
    server: ServerProcess, workers: Workers, copy: ServerCopy, tmp_path: Path
) -> None:
    workers.start("python", server.data_dir, worker_id="shared-box")
    with WhirrClient(server.url, token=server.token) as api:
        job_id = api.submit([sys.executable, "job.py"], str(work(tmp_path))).job_id
        wait_ended(api, job_id, workers)
        run_id = api.get_job(job_id).run_id
    files = copy.files(run_id)
    assert files["mode"] == "shared", files
    assert not (server.data_dir / "shipping").exists() or not list(
        (server.data_dir / "shipping").glob(f"{run_id}*")
    )
    assert b"done job-" in copy.log(job_id)
    assert "Run files: shipped" not in workers.output()
    assert os.path.exists(server.data_dir / "runs" / run_id / "metrics.jsonl")


DIRECT = """\
import sys, time, whirr
run = whirr.init(name="direct", config={"lr": 0.1}, system_metrics_interval=0.05,
                 capture_git=False, capture_pip=False)
for i in range(2000):
    run.log({"loss": 1.0 / (i + 1)}, step=i)
system = run.run_dir / "system.jsonl"
for _ in range(400):
    if system.exists() and system.read_bytes().count(b"\\n") >= 3:
        break
    time.sleep(0.05)
run.summary({"best": 0.0005})
with open("weights.bin", "wb") as fh:
    fh.write(b"w" * 100_000)
run.save_artifact("weights.bin")
print(run.run_id, run.run_dir)
# No finish(): the exit hook ends the run and flushes its files before the process exits.
"""


def test_direct_run_ships_its_files_before_it_exits(
    server: ServerProcess, copy: ServerCopy, tmp_path: Path
) -> None:
    home = tmp_path / "home"
    home.mkdir()
    (tmp_path / "train.py").write_text(DIRECT)
    env = {**server.env, "HOME": str(home)}
    done = subprocess.run(
        [sys.executable, "train.py"], cwd=tmp_path, env=env, capture_output=True, timeout=120
    )
    assert done.returncode == 0, done.stderr.decode()
    assert b"could not" not in done.stderr, done.stderr.decode()
    run_id, run_dir = done.stdout.decode().split()
    local = hide(Path(run_dir))
    # Everything was on the server when the script exited: no waiting here.
    with WhirrClient(server.url, token=server.token) as api:
        run = api.get_run(run_id)
        assert run.status == "completed"
        for name in ("metrics.jsonl", "system.jsonl"):
            assert server_stream(copy, run_id, 0, name) == (local / name).read_bytes(), name
        files = copy.files(run_id)
        assert files["attempt"] == 0, files
        assert files["files"]["metrics.jsonl"]["state"] == "complete", files
        resp = copy.http.get(f"/runs/{run_id}/artifacts/meta.json")
        assert resp.status_code == 200 and resp.content == (local / "meta.json").read_bytes()
        assert b'"completed"' in resp.content
        assert api.read_artifact(run_id, "weights.bin") == b"w" * 100_000


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


def test_a_later_attempt_on_a_fresh_machine_continues_idx(
    server: ServerProcess, workers: Workers, copy: ServerCopy, tmp_path: Path
) -> None:
    cwd = tmp_path / "work"
    cwd.mkdir()
    (cwd / "job.py").write_text(RETRIED)
    data_b, data_c = tmp_path / "worker-b", tmp_path / "worker-c"
    box_b = workers.start("python", data_b, worker_id="box-b")
    with WhirrClient(server.url, token=server.token) as api:
        job_id = api.submit([sys.executable, "job.py"], str(cwd), retries=1, retry_delay=0).job_id
        wait_for(lambda: b"attempt on B" in server_log(copy, job_id), timeout=60, interval=0.1)
        box_b.send_signal(signal.SIGTERM)  # drain: it finishes attempt 1, claims nothing more
        (cwd / "go").touch()
        box_b.wait(60)
        assert api.get_job(job_id).status == "queued", workers.output()
        workers.start("python", data_c, worker_id="box-c")
        wait_ended(api, job_id, workers)
        run_id = api.get_job(job_id).run_id
        assert api.get_job(job_id).attempt == 2
        wait_for(lambda: not list((data_c / "shipping").glob("*.json")))
    workers.close()
    rows = json_lines(server_stream(copy, run_id, job_id, "metrics.jsonl"))
    assert [r["_idx"] for r in rows] == list(range(100))
    assert [r["x"] for r in rows] == list(range(50)) * 2
    # Box C's file starts with the seed (attempt 1's last row), never shipped back.
    local_c = json_lines((hide(data_c) / "runs" / run_id / "metrics.jsonl").read_bytes())
    assert [r["_idx"] for r in local_c] == list(range(49, 100))
    assert server_log(copy, job_id).count(b"attempt on") == 2
