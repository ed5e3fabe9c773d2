"""``whirr show`` says where a run's files really are (issue 16): ``local (<dir>)`` in a
project, ``shared (<server dir>)`` for a worker that writes on the server's filesystem,
``shipped from <host>:<worker dir> to the server (<state>)`` for one that ships them, with
a ``Warning`` line for a missing tail and for files not on the server yet; ``--json``
carries the same as ``files_location``. A real server, the real CLI."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from cli_runner import run_cli as run_local_cli
from server_process import ServerProcess, run_cli

from whirr.client import WhirrClient
from whirr.project import Project


def show(server: ServerProcess, tmp_path: Path, run_id: str, *more: str) -> str:
    done = run_cli("show", run_id, *more, server=server, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    return done.stdout


def started(client: WhirrClient, worker: str, **said: str) -> tuple[str, int]:
    client.register_worker(worker, "gpu-box")
    client.cancel_all_queued()
    job_id = client.submit(["true"], "/tmp").job_id
    job = client.claim(worker)
    assert job is not None and job.id == job_id
    client.started(job_id, worker, job.attempt, 4242, **said)  # type: ignore[arg-type]
    return job.run_id, job.attempt


def test_a_shipped_run_says_where_from_and_how_far(
    server: ServerProcess, client: WhirrClient, tmp_path: Path
) -> None:
    run_id, attempt = started(client, "w-show", files="shipped", run_dir="/scratch/r/x")
    # Nothing arrived yet: said so, not an empty answer.
    shown = show(server, tmp_path, run_id)
    assert "Files:    shipped from gpu-box:/scratch/r/x to the server (pending" in shown, shown
    assert "Warning:  not on the server yet: output.log, metrics.jsonl, system.jsonl" in shown

    client.upload_run_file(run_id, "output.log", attempt, 0, b"hello\n")
    shown = show(server, tmp_path, run_id)
    assert "to the server (live)" in shown, shown
    assert "Warning:  not on the server yet: metrics.jsonl, system.jsonl" in shown, shown

    # The worker says it wrote more than arrived: the tail is missing, said per file.
    client.complete(run_id_job(client, run_id), "w-show", attempt, 0, run_id=run_id)
    client.final_run_files(run_id, attempt, {"output.log": 10})
    shown = show(server, tmp_path, run_id)
    assert "to the server (tail missing)" in shown, shown
    assert (
        "Warning:  output.log: its tail is missing (the worker wrote 10 bytes, the server has 6)"
        in shown
    )
    assert "not on the server yet" not in shown  # the empty streams are complete at 0

    data = json.loads(show(server, tmp_path, run_id, "--json"))
    where = data["files_location"]
    assert (where["mode"], where["state"]) == ("shipped", "missing_tail")
    assert (where["hostname"], where["worker_run_dir"]) == ("gpu-box", "/scratch/r/x")
    assert where["dir"] == str(server.data_dir / "runs" / run_id)
    assert where["files"]["output.log"] == {
        "size": 6,
        "attempt_size": 6,
        "final_size": 10,
        "state": "missing_tail",
    }
    assert len(where["warnings"]) == 1

    client.upload_run_file(run_id, "output.log", attempt, 6, b"more\n")
    client.final_run_files(run_id, attempt, {"output.log": 11})
    shown = show(server, tmp_path, run_id)
    assert "to the server (complete)" in shown and "Warning" not in shown, shown


def run_id_job(client: WhirrClient, run_id: str) -> int:
    job_id = client.get_run(run_id).job_id
    assert job_id is not None
    return job_id


def test_a_shared_run_says_shared_and_its_server_dir(
    server: ServerProcess, client: WhirrClient, tmp_path: Path
) -> None:
    run_id, _ = started(client, "w-show-shared", files="shared")
    # A worker on the shared mount writes the run's meta.json as it starts the job.
    run_dir = server.data_dir / "runs" / run_id
    run_dir.mkdir(parents=True, exist_ok=True)
    (run_dir / "meta.json").write_text("{}")
    shown = show(server, tmp_path, run_id)
    assert f"Files:    shared ({server.data_dir / 'runs' / run_id})" in shown, shown
    assert "Warning" not in shown
    data = json.loads(show(server, tmp_path, run_id, "--json"))
    assert (data["files_location"]["mode"], data["files_location"]["state"]) == (
        "shared",
        "shared",
    )


def test_a_project_run_says_local(project: Project) -> None:
    script = "import whirr\nrun = whirr.init(name='r')\nprint(run.run_id)\nrun.finish()\n"
    made = subprocess.run(
        [sys.executable, "-c", script], cwd=project.root, capture_output=True, text=True
    )
    run_id = made.stdout.split()[0]
    shown = run_local_cli("show", run_id, cwd=project.root, check=True).stdout
    assert f"Files:    local ({project.run_dir(run_id)})" in shown, shown
    data = json.loads(run_local_cli("show", run_id, "--json", cwd=project.root, check=True).stdout)
    assert data["files_location"]["mode"] == "local"
    assert data["files_location"]["files"]["meta.json"]["state"] == "local"
