"""Run and job management through a real ``whirr server`` (SQLite and PostgreSQL, issue
19 item 1): the CLI with ``--server`` (WHIRR_SERVER_URL), the HTTP routes' refusals, and
the Python API's config/tags/note in a direct run on the server and in a job a remote
worker runs (its run token may write its own run's config, tags and note)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
from server_process import ServerProcess, run_cli, start_remote_worker, worker_output

from whirr.client import WhirrClient
from whirr.wire.run_events import RunStartRequest

SCRIPT = """\
import whirr
run = whirr.init(name="orig", config={"a": 1}, tags=["t0"], system_metrics=False,
                 capture_git=False, capture_pip=False)
run.config["b"] = 2
run.config.update(c=3)
run.add_tags("t1")
run.remove_tags("t0")
run.note("from the script")
run.finish()
print("done", run.run_id)
"""


def ok(server: ServerProcess, cwd: Path, *args: str) -> str:
    done = run_cli(*args, server=server, cwd=cwd)
    assert done.returncode == 0, (args, done.stdout, done.stderr)
    return done.stdout


def as_json(server: ServerProcess, cwd: Path, *args: str) -> Any:
    cut = args.index("--") if "--" in args else len(args)
    return json.loads(ok(server, cwd, *args[:cut], "--json", *args[cut:]))


def listed(server: ServerProcess, cwd: Path, *flags: str) -> list[str]:
    return [r["id"] for r in as_json(server, cwd, "runs", *flags)["runs"]]


def test_management_through_a_server(server: ServerProcess, tmp_path: Path) -> None:
    work = tmp_path / "work"
    work.mkdir()
    (work / "train.py").write_text(SCRIPT)
    # A direct run recorded on the server (WHIRR_SERVER_URL in its environment).
    direct = subprocess.run(
        [sys.executable, "train.py"],
        cwd=work,
        env=server.env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert direct.returncode == 0, direct.stderr
    direct_id = direct.stdout.split()[-1]
    run = as_json(server, work, "show", direct_id)
    assert run["config"] == {"a": 1, "b": 2, "c": 3}
    assert (run["tags"], run["notes"]) == (["t1"], "from the script")

    # A job a remote worker runs: the script writes with its run token.
    with WhirrClient(server.url, token=server.token) as client:
        job_id = client.submit([sys.executable, "train.py"], str(work), name="job").job_id
        client.submit(["true"], str(work))
    worker = start_remote_worker(server, "--exit-when-empty", "-q")
    assert worker.wait(timeout=120) == 0, worker_output(server)
    job_run = as_json(server, work, "show", str(job_id))
    assert job_run["config"] == {"a": 1, "b": 2, "c": 3}, worker_output(server)
    assert (job_run["tags"], job_run["notes"]) == (["t1"], "from the script")

    # The CLI's management commands, by prefix or job number, through the server.
    ok(server, work, "runs", "rename", str(job_id), "renamed")
    assert as_json(server, work, "runs", "tag", f"#{job_id}", "paper")["tags"] == ["t1", "paper"]
    assert as_json(server, work, "runs", "untag", f"job-{job_id}", "t1")["tags"] == ["paper"]
    ok(server, work, "runs", "note", f"job-{job_id}", "--append", "and by hand")
    shown = as_json(server, work, "show", f"job-{job_id}")
    assert (shown["name"], shown["notes"]) == ("renamed", "from the script\n\nand by hand")
    ok(server, work, "runs", "archive", direct_id)
    assert direct_id not in listed(server, work)
    assert listed(server, work, "--archived") == [direct_id]
    assert direct_id in listed(server, work, "--all")
    ok(server, work, "runs", "unarchive", direct_id)
    assert direct_id in listed(server, work)

    run_dir = Path(shown["run_dir"])
    assert run_dir.is_dir()
    assert "Deleted run" in ok(server, work, "runs", "delete", f"job-{job_id}", "--yes")
    assert not run_dir.exists()
    assert f"job-{job_id}" not in listed(server, work, "--all")
    gone = run_cli("show", f"job-{job_id}", server=server, cwd=work)
    assert gone.returncode == 1 and gone.stderr.startswith("Error: ")

    # clean: ended jobs leave the status counts; their runs stay.
    assert [j["id"] for j in as_json(server, work, "status", "--all")["jobs"]] == [job_id + 1]
    cleaned = as_json(server, work, "clean")  # the deleted run's job is out already
    assert cleaned["cleaned"] == [job_id + 1]
    assert as_json(server, work, "status", "--all")["jobs"] == []
    assert f"job-{job_id + 1}" in listed(server, work)


def test_the_routes_refuse_what_they_should(server: ServerProcess) -> None:
    with WhirrClient(server.url, token=server.token) as client:
        # A direct run on another machine, still running: its files are being written.
        client.start_run(RunStartRequest(run_id="local-busy", hostname="elsewhere", pid=1))
    headers = {"Authorization": f"Bearer {server.token}"}
    with httpx.Client(base_url=f"{server.url}/api/v1", headers=headers, timeout=30) as http:
        busy = http.post("/runs/local-busy/delete")
        assert busy.status_code == 409 and "still running" in busy.json()["detail"]
        # Exact ids only (a write never lands on whichever run a prefix matches).
        assert http.post("/runs/local-bu/rename", json={"name": "x"}).status_code == 404
        assert http.post("/runs/nope/delete").status_code == 404
        # Bodies the log would refuse: 422 naming the problem, never a 5xx.
        assert http.post("/runs/local-busy/tags", json={}).status_code == 422
        assert http.post("/runs/local-busy/rename", json={"name": ""}).status_code == 422
        long_tag = http.post("/runs/local-busy/tags", json={"add": ["x" * 101]})
        assert long_tag.status_code == 422
        assert http.post("/jobs/clean", json={"statuses": ["queued"]}).status_code == 422
        listed = http.get("/runs", params={"archived": "sometimes"})
        assert listed.status_code == 422
    assert httpx.post(f"{server.url}/api/v1/jobs/clean", json={}, timeout=30).status_code == 401
