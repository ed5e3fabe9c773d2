"""``whirr.init()`` inside jobs that remote workers run: the run's attach, summary and
artifacts reach the server's event log through its HTTP API, so ``GET /runs/{id}`` and
studies over a server (``whirr sweep status --server``, ``whirr ablate rank --server``)
see the values scripts set with ``run.summary()``.

Real processes throughout: ``whirr server``, the Python remote worker (and the Rust
``whirr-worker``), the CLI, and scripts that import whirr.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from server_process import (
    ServerProcess,
    run_cli,
    rust_worker_binary,
    start_remote_worker,
    wait_for,
    worker_output,
)

from whirr.client import WhirrClient

PYTHON = sys.executable

# The logged loss (99) differs from the summary's: a study that reports the summary's
# value read the summary, not the metric rows.
TRAIN = """\
import argparse, pathlib, whirr
parser = argparse.ArgumentParser()
parser.add_argument("--lr", type=float, default=0.1)
parser.add_argument("--seed", type=int, default=0)
parser.add_argument("--cfg", default=None)
args = parser.parse_args()
with whirr.init(name="from-script", config={"seed": args.seed}, tags=["script"],
                system_metrics=False, capture_git=False, capture_pip=False) as run:
    run.log({"loss": 99.0}, step=0)
    pathlib.Path("model.pt").write_bytes(b"0123456789")
    run.save_artifact("model.pt", "best/model.pt")
    loss = round(args.lr * 10 + args.seed / 100, 4)
    run.summary({"loss": loss, "host_seen": True})
print("done", run.run_id)
"""


@pytest.fixture
def work(tmp_path: Path) -> Path:
    """A working directory holding the training script (no project: server only)."""
    path = tmp_path / "work"
    path.mkdir()
    (path / "train.py").write_text(TRAIN)
    return path


def cli(server: ServerProcess, cwd: Path, *args: str) -> Any:
    """The CLI against ``server`` with ``--json``; fails the test on an error."""
    result = run_cli(*args, "--json", server=server, cwd=cwd)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def check_recorded_run(client: WhirrClient, job_id: int, *, worker_meta: bool) -> None:
    """What the script recorded is on the server: summary, artifact, attach info."""
    job = client.get_job(job_id)
    assert job.status == "completed", job
    run = client.get_run(job.run_id)
    assert run.summary == {"loss": 1.0, "host_seen": True}
    assert [(a.path, a.size) for a in run.artifacts] == [("best/model.pt", 10)]
    assert run.config == {"lr": 0.1, "seed": 0}  # the job's config, merged with the script's
    assert "script" in run.tags and run.name == "job-name"  # the job's name wins
    assert run.status == "completed" and run.hostname
    assert [a.path for a in client.artifacts(job.run_id)] == ["best/model.pt"]
    # The files are written as before.
    meta = json.loads((Path(run.run_dir) / "meta.json").read_text())
    assert meta["summary"] == {"loss": 1.0, "host_seen": True}
    assert (meta["name"] == "job-name") is worker_meta


def test_a_remote_python_workers_job_records_its_run_on_the_server(
    server: ServerProcess, work: Path
) -> None:
    with WhirrClient(server.url, token=server.token) as client:
        job_id = client.submit(
            [PYTHON, "train.py"], str(work), name="job-name", config={"lr": 0.1}, tags=["job"]
        ).job_id
        worker = start_remote_worker(server, "--exit-when-empty", "-q")
        assert worker.wait(timeout=120) == 0, worker_output(server)
        check_recorded_run(client, job_id, worker_meta=True)
        log = client.logs(job_id).decode()
        assert "done job-" in log and "could not record" not in log, log


def test_studies_over_a_server_rank_by_the_summary_scripts_set(
    server: ServerProcess, work: Path
) -> None:
    (work / "sweep.yaml").write_text(
        f"name: lr\nprogram: {PYTHON} train.py\nmetric: loss\nparameters:\n  lr: [0.3, 0.05, 0.2]\n"
    )
    swept = run_cli("sweep", "sweep.yaml", "--server", server.url, server=server, cwd=work)
    assert swept.returncode == 0, swept.stderr
    for args in (
        ["init", "toy", "-m", "loss", "-r", "2", "--seed-base", "5"],
        ["baseline", "toy", "lr=0.1"],
        ["add", "toy", "lr=0.3", "-n", "high"],
    ):
        assert run_cli("ablate", *args, server=server, cwd=work).returncode == 0
    ran = run_cli(
        "ablate",
        "run",
        "toy",
        "--",
        PYTHON,
        "train.py",
        "--seed",
        "{{seed}}",
        "--cfg",
        "{{cfg_path}}",
        server=server,
        cwd=work,
    )
    assert ran.returncode == 0, ran.stderr
    worker = start_remote_worker(server, "--exit-when-empty", "-q")
    assert worker.wait(timeout=180) == 0, worker_output(server)

    report = cli(server, work, "sweep", "status", "lr")
    assert (report["best"]["index"], report["best"]["value"]) == (1, 0.5)
    ranking = cli(server, work, "ablate", "rank", "toy")
    (high,) = ranking["effects"]
    # The script's --lr is its default (0.1) in every condition: only the seed moves the
    # summary, so each pair is (0.1 * 10 + seed / 100) twice; the metric rows say 99.
    assert [(p["baseline"], p["delta"]) for p in high["pairs"]] == [(1.05, 1.05), (1.06, 1.06)]


@pytest.fixture
def rust_worker(server: ServerProcess) -> Iterator[Path]:
    binary = rust_worker_binary()
    """A ``whirr-worker`` on the server's data dir (killed at teardown)."""
    env = {k: v for k, v in server.env.items() if k != "WHIRR_SERVER_URL"}
    with open(server.logs_dir / "worker-rust.log", "wb") as log:
        proc = subprocess.Popen(
            [
                str(binary),
                "-s",
                server.url,
                "-d",
                str(server.data_dir),
                "--poll-interval",
                "0.5",
            ],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    yield binary
    proc.kill()
    proc.wait()


@pytest.mark.usefixtures("rust_worker")
def test_a_rust_workers_job_records_its_run_on_the_server(
    server: ServerProcess, work: Path
) -> None:
    with WhirrClient(server.url, token=server.token) as client:
        job_id = client.submit(
            [PYTHON, "train.py"], str(work), name="job-name", config={"lr": 0.1}
        ).job_id
        wait_for(lambda: client.get_job(job_id).status in ("completed", "failed"), timeout=120)
        assert client.get_job(job_id).status == "completed", worker_output(server)
        check_recorded_run(client, job_id, worker_meta=False)
        # A job may withhold the token: its run then keeps its files only, and says so.
        withheld = client.submit(
            [PYTHON, "train.py"], str(work), name="no-token", env={"WHIRR_TOKEN": ""}
        ).job_id
        wait_for(lambda: client.get_job(withheld).status == "completed", timeout=120)
        run = client.get_run(client.get_job(withheld).run_id)
        assert run.summary == {} and run.artifacts == []
        assert "could not record the run on the server" in client.logs(withheld).decode()
        assert os.path.getsize(Path(run.run_dir) / "metrics.jsonl") > 0
