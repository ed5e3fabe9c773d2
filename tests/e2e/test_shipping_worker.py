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
import subprocess
import sys
from pathlib import Path

import pytest
from server_process import ServerProcess, wait_for
from shipping_env import (  # noqa: F401 - fixtures
    ROWS,
    STREAMS,
    ServerCopy,
    Workers,
    a_killed_workers_successor_ships_the_rest,
    attempt_two_on_a_fresh_data_dir_continues_idx,
    copy_fixture,
    hide,
    job_dir,
    json_lines,
    no_ledgers,
    on_the_head_node,
    same_files,
    ship_a_job,
    shipped_job,
    wait_completed,
    workers_fixture,
)

from whirr.client import WhirrClient

pytestmark = pytest.mark.skipif(sys.platform != "linux", reason="the worker is Linux-only")

JOB = shipped_job(
    "shipped",
    """\
with open("model.bin", "wb") as fh:
    fh.write(os.urandom(300_000))
run.save_artifact("model.bin")
""",
)


def test_worker_ships_every_run_file_and_reports_the_end_after(
    server: ServerProcess, workers: Workers, copy: ServerCopy, tmp_path: Path
) -> None:
    data_b = tmp_path / "worker-b"
    with WhirrClient(server.url, token=server.token) as api:
        cwd = job_dir(tmp_path, JOB)
        job_id, run_id = ship_a_job("python", data_b, "box-b", api, workers, copy, cwd)
        # meta.json gets the job's final state after the end is reported: shipped just
        # after, and then no ledger is left.
        wait_for(lambda: no_ledgers(data_b))
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

    logs = on_the_head_node(server, tmp_path, "logs", str(job_id), "--server", server.url)
    assert logs == (local / "output.log").read_bytes()
    assert "done job-" in logs.decode()


def test_a_killed_workers_successor_ships_the_rest(
    server: ServerProcess, workers: Workers, copy: ServerCopy, tmp_path: Path
) -> None:
    data_b = tmp_path / "worker-b"
    cwd = job_dir(tmp_path, JOB)
    with WhirrClient(server.url, token=server.token) as api:
        a_killed_workers_successor_ships_the_rest(
            "python", data_b, "box-b", api, workers, copy, cwd, stop=workers.close
        )


def test_shared_data_dir_ships_nothing(
    server: ServerProcess, workers: Workers, copy: ServerCopy, tmp_path: Path
) -> None:
    workers.start("python", server.data_dir, worker_id="shared-box")
    with WhirrClient(server.url, token=server.token) as api:
        job_id = api.submit([sys.executable, "job.py"], str(job_dir(tmp_path, JOB))).job_id
        wait_completed(api, job_id, workers)
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
            assert copy.stream(run_id, 0, name) == (local / name).read_bytes(), name
        files = copy.files(run_id)
        assert files["attempt"] == 0, files
        assert files["files"]["metrics.jsonl"]["state"] == "complete", files
        resp = copy.http.get(f"/runs/{run_id}/artifacts/meta.json")
        assert resp.status_code == 200 and resp.content == (local / "meta.json").read_bytes()
        assert b'"completed"' in resp.content
        assert api.read_artifact(run_id, "weights.bin") == b"w" * 100_000


def test_a_later_attempt_on_a_fresh_machine_continues_idx(
    server: ServerProcess, workers: Workers, copy: ServerCopy, tmp_path: Path
) -> None:
    attempt_two_on_a_fresh_data_dir_continues_idx(
        "python", server, workers, copy, tmp_path, stop=workers.close
    )
