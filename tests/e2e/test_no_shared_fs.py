"""End to end: no shared filesystem (issue 16). The server's data dir A, a Python worker
on data dir B and the Rust worker on data dir C, as on three machines without a common
mount. A job on each worker logs metrics, system samples, output, a summary and saves a
50 MB artifact; on the head node ``whirr logs``, ``whirr show``, ``whirr compare``,
``whirr export``, the dashboard's chart JSON and ``whirr artifacts get`` see exactly the
bytes the worker wrote (sha256 of each file). Before anything arrived, the server says
the run's files are pending instead of answering 200 with nothing.

Over SQLite and PostgreSQL (the ``server`` fixture). Real processes throughout.
"""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from server_process import WHIRR, ServerProcess, wait_for
from shipping_env import STREAMS, ServerCopy, Workers, file_sha, hide, json_lines, sha

from whirr.client import WhirrClient

pytestmark = pytest.mark.skipif(sys.platform != "linux", reason="the workers are Linux-only")

ARTIFACT_MB = 50
#: What an honest answer says about files that have not reached the server yet.
SAYS_PENDING = ("pending", "not reached", "nothing arrived", "not on the server")
ROWS = 300

# Waits for ``go`` (the test writes it once it has seen that nothing reached the server
# yet) and prints nothing before: a shipped run with no byte on the server.
JOB = f"""\
import os, pathlib, sys, time, whirr
for _ in range(1200):  # at most ~60 s
    if os.path.exists("go"):
        break
    time.sleep(0.05)
else:
    sys.exit(3)
kind = sys.argv[1]
print("job starts on", kind, flush=True)
with whirr.init(name="ship-" + kind, config={{"lr": 0.1, "kind": kind}},
                system_metrics_interval=0.05, capture_git=False, capture_pip=False) as run:
    for i in range({ROWS}):
        run.log({{"loss": 1.0 / (i + 1), "acc": i / {ROWS}, "lr": 0.1}},
                step=i)
        if i % 25 == 0:
            print(f"step {{i}} loss {{1.0 / (i + 1):.6f}} ünïcode", flush=True)
    system = run.run_dir / "system.jsonl"
    for _ in range(400):  # at least 3 samples (the sampler writes one every 0.05 s)
        if system.exists() and system.read_bytes().count(b"\\n") >= 3:
            break
        time.sleep(0.05)
    with open("model.bin", "wb") as fh:
        for _ in range({ARTIFACT_MB}):
            fh.write(os.urandom(1 << 20))
    run.save_artifact("model.bin")
    run.summary({{"best_loss": 1.0 / {ROWS}, "kind": kind}})
print("done", run.run_id, flush=True)
"""


@pytest.fixture
def workers(server: ServerProcess) -> Iterator[Workers]:
    w = Workers(server)
    yield w
    w.close()


def cli(server: ServerProcess, cwd: Path, *args: str) -> subprocess.CompletedProcess[bytes]:
    """The head node's CLI (bytes out: ``whirr logs`` must match the worker's bytes)."""
    return subprocess.run(
        [*WHIRR, *args], cwd=cwd, env=server.env, capture_output=True, timeout=120
    )


def cli_json(server: ServerProcess, cwd: Path, *args: str) -> Any:
    result = cli(server, cwd, *args)
    assert result.returncode == 0, result.stderr.decode()
    return json.loads(result.stdout)


def workdir(root: Path, kind: str) -> Path:
    path = root / "work" / kind
    path.mkdir(parents=True)
    (path / "job.py").write_text(JOB)
    return path


def test_three_data_dirs_the_head_node_sees_the_workers_bytes(
    server: ServerProcess, workers: Workers, tmp_path: Path
) -> None:
    head = tmp_path / "head"
    head.mkdir()
    dirs = {"python": tmp_path / "worker-b", "rust": tmp_path / "worker-c"}
    jobs: dict[str, int] = {}
    with WhirrClient(server.url, token=server.token) as api:
        # One job per worker: the Python worker takes the first (it runs one at a time and
        # the job waits for ``go``), the Rust worker, started after, the second.
        for kind in ("python", "rust"):
            work = workdir(tmp_path, kind)
            workers.start(kind, dirs[kind], worker_id=f"{kind}-box")
            jobs[kind] = api.submit([sys.executable, "job.py", kind], str(work)).job_id
            wait_for(lambda kind=kind: api.get_job(jobs[kind]).status == "running", timeout=60)
            assert api.get_job(jobs[kind]).worker_id == f"{kind}-box"
        runs = {kind: api.get_job(job_id).run_id for kind, job_id in jobs.items()}

        copy = ServerCopy(server)
        try:
            # Nothing of output.log reached the server yet: it says so.
            for kind, run_id in runs.items():
                check_pending(server, copy, head, jobs[kind], run_id)
            for kind in jobs:
                (tmp_path / "work" / kind / "go").touch()
            for job_id in jobs.values():
                wait_for(
                    lambda job_id=job_id: (
                        api.get_job(job_id).status in ("completed", "failed", "cancelled")
                    ),
                    timeout=180,
                    interval=0.2,
                )
                assert api.get_job(job_id).status == "completed", workers.output()
            workers.stop_all()
            dirs = {kind: hide(path) for kind, path in dirs.items()}
            for kind, run_id in runs.items():
                local = dirs[kind] / "runs" / run_id
                check_streams(copy, local, run_id, jobs[kind])
                check_views(server, head, local, run_id, jobs[kind], kind)
                check_dashboard(server, local, run_id)
                check_artifact(server, head, local, run_id)
            check_compare(server, head, dirs, runs)
        finally:
            copy.close()


def check_pending(
    server: ServerProcess, copy: ServerCopy, head: Path, job_id: int, run_id: str
) -> None:
    files = copy.files(run_id)
    assert files["mode"] == "shipped", files
    assert files["files"].get("output.log", {"state": "pending"})["state"] == "pending", files
    resp = copy.http.get(f"/jobs/{job_id}/logs")
    assert resp.status_code == 404, (resp.status_code, resp.content)
    reason = json.dumps(resp.json()).lower()
    assert any(word in reason for word in SAYS_PENDING), reason
    logs = cli(server, head, "logs", str(job_id))
    # Never "exit 0 with nothing": a one-line error, or a line that says pending.
    if logs.returncode == 0:
        said = (logs.stdout + logs.stderr).decode().lower()
        assert any(word in said for word in SAYS_PENDING), logs
    else:
        err = logs.stderr.decode()
        assert err.startswith("Error:") and "Traceback" not in err, err


def check_streams(copy: ServerCopy, local: Path, run_id: str, job_id: int) -> None:
    """The server's copy of each stream is the worker's, byte for byte; all complete."""
    for name in STREAMS:
        mine = (local / name).read_bytes()
        assert mine, name  # the job wrote to each
        theirs = copy.stream(run_id, job_id, name)
        assert sha(theirs) == sha(mine), (name, len(theirs), len(mine))
    files = copy.files(run_id)
    assert files["mode"] == "shipped"
    for name in (*STREAMS, "meta.json", "config.json"):
        assert files["files"][name]["state"] == "complete", (name, files)
        assert files["files"][name]["size"] == (local / name).stat().st_size, (name, files)


def check_views(
    server: ServerProcess, head: Path, local: Path, run_id: str, job_id: int, kind: str
) -> None:
    """``whirr logs``, ``whirr show`` and ``whirr export`` on the head node."""
    logs = cli(server, head, "logs", str(job_id))
    assert logs.returncode == 0, logs.stderr.decode()
    assert sha(logs.stdout) == file_sha(local / "output.log")
    rows = json_lines((local / "metrics.jsonl").read_bytes())
    samples = json_lines((local / "system.jsonl").read_bytes())
    assert len(rows) == ROWS and len(samples) >= 3

    shown = cli_json(server, head, "show", run_id, "--json")
    assert shown["files_mode"] == "shipped", shown
    where = shown["files_location"]
    assert (where["state"], where["warnings"]) == ("complete", []), where
    assert where["line"].endswith(f"/runs/{run_id} to the server (complete)"), where
    assert shown["summary"] == {"best_loss": 1.0 / ROWS, "kind": kind}
    assert shown["metrics_rows"] == ROWS
    last = {k: v for k, v in rows[-1].items() if not k.startswith("_")}
    assert shown["last_metrics"] == last
    meta = json.loads((local / "meta.json").read_text())
    assert meta["summary"] == shown["summary"]
    assert shown["last_system"], shown  # the samples reached the server too

    result = cli(server, head, "export", run_id, "--metrics", "--wide", "-f", "jsonl")
    assert result.returncode == 0, result.stderr.decode()
    exported = json_lines(result.stdout)
    keys = ("_idx", "step", "loss", "acc", "lr")
    assert [{k: r[k] for k in keys} for r in exported] == [{k: r[k] for k in keys} for r in rows]


def check_dashboard(server: ServerProcess, local: Path, run_id: str) -> None:
    """The chart JSON and the log panel of the dashboard inside ``whirr server``."""
    rows = json_lines((local / "metrics.jsonl").read_bytes())
    samples = json_lines((local / "system.jsonl").read_bytes())
    with httpx.Client(base_url=server.url, headers=server.headers(), timeout=60) as dash:
        series = dash.get(f"/ui/runs/{run_id}/series", params={"points": 10_000}).json()
        assert series["rows"] == len(rows)
        by_key = {s["key"]: s for s in series["series"]}
        assert by_key["loss"]["y"] == [r["loss"] for r in rows]
        assert by_key["loss"]["x"] == [r["step"] for r in rows]
        system = dash.get(
            f"/ui/runs/{run_id}/series", params={"kind": "system", "x": "time"}
        ).json()
        assert system["rows"] == len(samples)
        log = dash.get(f"/ui/runs/{run_id}/log").json()
        assert log["text"].encode() == (local / "output.log").read_bytes()
        # The run page says where the files are, as ``whirr show`` does.
        where = dash.get(f"/ui/runs/{run_id}").json()["files_location"]
        assert (where["mode"], where["state"], where["warnings"]) == ("shipped", "complete", [])


def check_artifact(server: ServerProcess, head: Path, local: Path, run_id: str) -> None:
    """``whirr artifacts get`` and the API hand back the worker's 50 MB, checksummed."""
    mine = local / "artifacts" / "model.bin"
    assert mine.stat().st_size == ARTIFACT_MB << 20
    want = file_sha(mine)
    dest = head / f"{run_id}-model.bin"
    got = cli(server, head, "artifacts", "get", run_id, "model.bin", "-o", str(dest))
    assert got.returncode == 0, got.stderr.decode()
    assert file_sha(dest) == want
    digest = hashlib.sha256()
    with (
        httpx.Client(base_url=f"{server.url}/api/v1", headers=server.headers(), timeout=60) as c,
        c.stream("GET", f"/runs/{run_id}/artifacts/model.bin") as resp,
    ):
        assert resp.status_code == 200
        for block in resp.iter_bytes():
            digest.update(block)
    assert digest.hexdigest() == want
    with WhirrClient(server.url, token=server.token) as api:
        recorded = {a.path: a for a in api.get_run(run_id).artifacts}
    assert recorded["model.bin"].size == ARTIFACT_MB << 20
    assert getattr(recorded["model.bin"], "sha256", want) == want


def check_compare(
    server: ServerProcess, head: Path, dirs: dict[str, Path], runs: dict[str, str]
) -> None:
    """``whirr compare`` of the two runs: each one's last row as its worker wrote it."""
    report = cli_json(server, head, "compare", runs["python"], runs["rust"], "--json")
    by_id = {r["id"]: r for r in report["runs"]}
    for kind, run_id in runs.items():
        last = json_lines((dirs[kind] / "runs" / run_id / "metrics.jsonl").read_bytes())[-1]
        assert by_id[run_id]["metrics"]["loss"] == last["loss"]
        assert by_id[run_id]["metrics"]["acc"] == last["acc"]
        assert by_id[run_id]["summary"]["kind"] == kind
