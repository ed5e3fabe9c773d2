"""`whirr migrate`: a project made by the real original whirr 0.5.3 (issue 20).

The original project is made once per module by 0.5.3's own CLI, worker and tracking
library, from its own venv (``tests/original_whirr.py``): two jobs that log metrics, a
summary and an artifact, one that fails, one still queued, one cancelled, and a run made
directly by a script. Each test works on a copy of it (so the project has also moved,
as the original's absolute run paths do not follow).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import signal
import sqlite3
import subprocess
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from original_whirr import clean_env, original_venv_python
from server_process import WHIRR

TRAIN = """\
import sys, whirr
lr = float(sys.argv[1])
run = whirr.init(config={"lr": lr, "layers": 2}, tags=["sweep-a"])
for step in range(5):
    run.log({"loss": lr / (step + 1), "acc": step * 0.1}, step=step)
run.summary({"best_loss": lr / 5})
with open("model.txt", "w") as fh:
    fh.write(f"weights {lr}")
run.save_artifact("model.txt")
run.finish()
"""


def original_rows(db: Path) -> dict[str, list[dict[str, Any]]]:
    """What 0.5.3 recorded: its jobs and runs tables, read-only."""
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    conn.row_factory = sqlite3.Row
    try:
        return {
            table: [dict(row) for row in conn.execute(f"SELECT * FROM {table} ORDER BY id")]
            for table in ("jobs", "runs")
        }
    finally:
        conn.close()


def finished_jobs(db: Path) -> int:
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        query = "SELECT COUNT(*) FROM jobs WHERE status IN ('completed', 'failed')"
        return int(conn.execute(query).fetchone()[0])
    except sqlite3.OperationalError:  # locked by the worker's write: ask again
        return 0
    finally:
        conn.close()


@pytest.fixture(scope="module")
def original_project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A project made by whirr 0.5.3: jobs 1-3 run by its worker (2 fails), 4 queued,
    5 cancelled, and a direct run of its tracking library."""
    python = original_venv_python(tmp_path_factory)
    root = tmp_path_factory.mktemp("original") / "project"
    root.mkdir()
    env = clean_env(root)
    bin_dir = python.parent

    def original(*args: str) -> str:
        done = subprocess.run(
            [str(bin_dir / "whirr"), *args], cwd=root, env=env, capture_output=True,
            text=True, timeout=120,
        )  # fmt: skip
        assert done.returncode == 0, f"0.5.3 whirr {args}: {done.stdout}{done.stderr}"
        return done.stdout

    original("init")
    config = root / ".whirr" / "config.yaml"
    config.write_text(config.read_text().replace("poll_interval: 5", "poll_interval: 1"))
    (root / "train.py").write_text(TRAIN)
    original("submit", "-n", "good", "-t", "a,b", "--", str(python), "train.py", "0.5")
    original("submit", "-n", "bad", "--", "sh", "-c", "echo oops; exit 3")
    original("submit", "-n", "good2", "--", str(python), "train.py", "0.1")
    db = root / ".whirr" / "whirr.db"
    with open(root / "worker.log", "wb") as log:
        worker = subprocess.Popen(
            [str(bin_dir / "whirr"), "worker"], cwd=root, env=env, stdout=log,
            stderr=subprocess.STDOUT,
        )  # fmt: skip
        try:
            deadline = time.monotonic() + 90
            while finished_jobs(db) < 3 and time.monotonic() < deadline:
                time.sleep(0.2)
        finally:
            worker.send_signal(signal.SIGINT)  # its own clean stop: unregisters
            try:
                worker.wait(timeout=30)
            except subprocess.TimeoutExpired:
                worker.kill()
                worker.wait(timeout=10)
    assert finished_jobs(db) == 3, (root / "worker.log").read_text()
    original("submit", "-n", "waiting", "--", "echo", "later")
    original("submit", "-n", "gone", "--", "echo", "never")
    original("cancel", "5")
    direct = subprocess.run(
        [str(python), "train.py", "0.3"], cwd=root, env=env, capture_output=True, timeout=120
    )
    assert direct.returncode == 0, direct.stderr
    return root


@pytest.fixture
def project(original_project: Path, tmp_path: Path) -> Path:
    """A copy of the original project for one test."""
    copy = tmp_path / "moved"
    shutil.copytree(original_project, copy)
    return copy


def whirr(root: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k not in ("WHIRR_SERVER_URL", "WHIRR_TOKEN")}
    return subprocess.run(
        [*WHIRR, *args], cwd=root, env=env, capture_output=True, text=True, timeout=120
    )


def ok_json(root: Path, *args: str) -> Any:
    done = whirr(root, *args)
    assert done.returncode == 0, f"whirr {args}: {done.stderr}"
    return json.loads(done.stdout)


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_an_original_project_asks_for_migrate_and_is_left_alone(project: Path) -> None:
    db = project / ".whirr" / "whirr.db"
    before = original_rows(db)
    bytes_before = digest(db)
    for args in (("runs",), ("status",), ("submit", "--", "echo", "x"), ("init",)):
        done = whirr(project, *args)
        assert done.returncode != 0, args
        lines = done.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("Error: "), (args, done.stderr)
        assert "whirr 0.5.3" in lines[0] and "whirr migrate" in lines[0], lines[0]
    doctor = whirr(project, "doctor")
    assert doctor.returncode == 1 and "run `whirr migrate`" in doctor.stdout, doctor.stdout
    dry = whirr(project, "migrate", "--dry-run")
    assert dry.returncode == 0, dry.stderr
    assert "would" in dry.stdout and "5 jobs" in dry.stdout and "4 runs" in dry.stdout
    plan = ok_json(project, "migrate", "--dry-run", "--json")
    assert plan["dry_run"] is True and plan["jobs"] == 5 and plan["runs"] == 4
    assert digest(db) == bytes_before and original_rows(db) == before
    assert not list((project / ".whirr").glob("whirr-0.5.3-*"))  # no backup on a dry run


def test_migrate_keeps_what_the_original_recorded(project: Path) -> None:
    whirr_dir = project / ".whirr"
    recorded = original_rows(whirr_dir / "whirr.db")
    jobs = {j["id"]: j for j in recorded["jobs"]}
    runs = {r["id"]: r for r in recorded["runs"]}
    local = next(r for r in runs if r.startswith("local-"))

    done = ok_json(project, "migrate", "--json")
    assert done["dry_run"] is False and done["jobs"] == 5 and done["runs"] == 4
    backup = Path(done["backup"])
    assert backup.parent == whirr_dir and backup.name.startswith("whirr-0.5.3-")
    assert original_rows(backup) == recorded  # the original, as it was

    # Jobs: ids, names, commands, tags, statuses, exit codes.
    listed = {j["id"]: j for j in ok_json(project, "status", "--all", "--json")["jobs"]}
    assert sorted(listed) == [1, 2, 3, 4, 5]
    for job_id, job in listed.items():
        was = jobs[job_id]
        assert job["name"] == was["name"]
        assert job["command_argv"] == json.loads(was["command_argv"])
        assert job["tags"] == json.loads(was["tags"] or "[]")
        assert job["status"] == was["status"]
        assert job["exit_code"] == was["exit_code"]
        assert job["run_id"] == f"job-{job_id}"
    assert listed[1]["worker_id"] == jobs[1]["worker_id"]

    # Runs: ids, names, configs, tags, statuses, summaries, artifacts, their files.
    shown_runs = {r["id"]: r for r in ok_json(project, "runs", "--json")["runs"]}
    assert set(shown_runs) == {"job-1", "job-2", "job-3", local}
    for run_id, was in runs.items():
        run = shown_runs[run_id]
        assert run["name"] == was["name"] and run["job_id"] == was["job_id"]
        assert run["config"] == json.loads(was["config"])
        assert run["tags"] == json.loads(was["tags"])
        assert run["summary"] == json.loads(was["summary"])
        assert run["status"] == was["status"]
        assert run["duration_seconds"] == pytest.approx(was["duration_seconds"], abs=0.01)
        assert run["run_dir"] == str(whirr_dir / "runs" / run_id)  # where the copy lives
    assert shown_runs["job-2"]["status"] == "failed" and shown_runs["job-2"]["exit_code"] == 3
    one = ok_json(project, "show", "job-1", "--json")
    assert [a["path"] for a in one["artifacts"]] == ["model.txt"]
    assert one["last_metrics"]["loss"] == pytest.approx(0.1) and one["metrics_rows"] == 5

    compared = ok_json(project, "compare", "job-1", "job-3", "--json")
    assert [r["config"]["lr"] for r in compared["runs"]] == [0.5, 0.1]
    assert [r["metrics"]["loss"] for r in compared["runs"]] == pytest.approx([0.1, 0.02])
    exported = whirr(project, "export", "runs.json")
    assert exported.returncode == 0, exported.stderr
    rows = {r["id"]: r for r in json.loads((project / "runs.json").read_text())}
    assert set(rows) == set(shown_runs)
    assert whirr(project, "logs", "2").stdout == "oops\n"
    assert ok_json(project, "status", "--json")["jobs"][0]["id"] == 4  # still queued

    # The log replays to the same views, and migrating again has nothing to do.
    views = (ok_json(project, "status", "--all", "--json"), ok_json(project, "runs", "--json"))
    assert whirr(project, "rebuild").returncode == 0
    assert (ok_json(project, "status", "--all", "--json"), ok_json(project, "runs", "--json")) == (
        views
    )
    db_bytes = digest(whirr_dir / "whirr.db")
    again = whirr(project, "migrate")
    assert again.returncode == 0 and "nothing to do" in again.stdout, again.stderr
    assert digest(whirr_dir / "whirr.db") == db_bytes
    assert len(list(whirr_dir.glob("whirr-0.5.3-*"))) == 1

    # New jobs are numbered above the original's.
    submitted = whirr(project, "submit", "--", "echo", "new")
    assert submitted.returncode == 0 and "Submitted job #6" in submitted.stdout, submitted.stderr


def test_a_job_left_running_by_the_original(project: Path) -> None:
    """A job 0.5.3 shows running: refused while its worker's heartbeat is recent (nothing
    written); once the heartbeat is older than heartbeat_timeout, migrated as failed."""
    db = project / ".whirr" / "whirr.db"
    conn = sqlite3.connect(db)
    stamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    with conn:
        conn.execute(
            "UPDATE jobs SET status = 'running', started_at = ?, heartbeat_at = ?, "
            "worker_id = 'elsewhere:default' WHERE id = 4",
            (stamp, stamp),
        )
    conn.close()
    bytes_before = digest(db)
    refused = whirr(project, "migrate")
    assert refused.returncode == 1, refused.stdout
    assert refused.stderr.startswith("Error: job #4 is running under a whirr 0.5.3 worker")
    assert len(refused.stderr.strip().splitlines()) == 1, refused.stderr
    assert digest(db) == bytes_before
    assert not list((project / ".whirr").glob("whirr-0.5.3-*"))

    conn = sqlite3.connect(db)
    with conn:
        conn.execute("UPDATE jobs SET heartbeat_at = '2020-01-01T00:00:00Z' WHERE id = 4")
    conn.close()
    assert whirr(project, "migrate").returncode == 0
    job = ok_json(project, "status", "4", "--json")
    assert job["status"] == "failed" and "worker was gone" in job["error"], job
    assert ok_json(project, "show", "job-4", "--json")["status"] == "failed"


def test_a_data_dir_of_the_original_server(project: Path, tmp_path: Path) -> None:
    """0.5.3's `whirr server -d DIR` on SQLite keeps DIR/whirr.db (the same tables) and
    DIR/runs: `whirr migrate -d DIR`, then this whirr's server serves what it held."""
    from server_process import ServerProcess

    root = tmp_path / "server"
    data = root / "data"
    data.mkdir(parents=True)
    shutil.copy2(project / ".whirr" / "whirr.db", data / "whirr.db")
    shutil.copytree(project / ".whirr" / "runs", data / "runs")
    refused = whirr(tmp_path, "server", "-d", str(data), "--no-auth", "-p", "0")
    assert refused.returncode == 1, refused.stderr
    assert f"run `whirr migrate -d {data}`" in refused.stderr, refused.stderr
    done = ok_json(tmp_path, "migrate", "-d", str(data), "--json")
    assert done["jobs"] == 5 and done["runs"] == 4 and Path(done["backup"]).parent == data
    assert "nothing to do" in whirr(tmp_path, "migrate", "-d", str(data)).stdout
    server = ServerProcess(root)
    try:
        headers = {"Authorization": f"Bearer {server.token}"}
        answer = httpx.get(f"{server.url}/api/v1/runs", headers=headers, timeout=10).json()
        assert {r["id"] for r in answer["runs"]} >= {"job-1", "job-2", "job-3"}
        job = httpx.get(f"{server.url}/api/v1/jobs/1", headers=headers, timeout=10).json()
        assert job["name"] == "good" and job["status"] == "completed"
        metrics = httpx.get(f"{server.url}/api/v1/runs/job-1/metrics", headers=headers, timeout=10)
        assert metrics.json()["count"] == 5
    finally:
        server.stop()
