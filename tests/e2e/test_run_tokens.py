"""Jobs do not get their worker's token (issue 22): each attempt a remote worker runs
gets a run token as ``WHIRR_TOKEN`` that can record and read its own run, during that
attempt only. Real ``whirr server``, real Python and Rust workers, and a job that tries
its token on its own run, on another run, and on the rest of the API; the server runs
over SQLite and over PostgreSQL (the ``server`` fixture of this folder)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
from server_process import WHIRR, ServerProcess, rust_worker_binary, stop_process, wait_for

#: The job: what its WHIRR_TOKEN may do, written to probe.json in its working directory.
PROBE = """\
import json, os, sys, httpx
from whirr.client import api_base
token = os.environ.get("WHIRR_TOKEN")
run_id = os.environ["WHIRR_RUN_ID"]
other = sys.argv[1]
api = api_base(os.environ["WHIRR_SERVER_URL"])  # the Python worker's ends in /api/v1
h = {"Authorization": f"Bearer {token}"}
def code(method, path, **kw):
    return httpx.request(method, api + path, headers=h, timeout=30, **kw).status_code
out = {
    "token": token,
    "attach": code("POST", f"/runs/{run_id}/attach", json={"hostname": "probe"}),
    "summary": code("POST", f"/runs/{run_id}/summary", json={"summary": {"acc": 0.5}}),
    "get_own": code("GET", f"/runs/{run_id}"),
    "other_summary": code("POST", f"/runs/{other}/summary", json={"summary": {"x": 1}}),
    "other_get": code("GET", f"/runs/{other}"),
    "submit": code("POST", "/jobs", json={"command_argv": ["true"], "workdir": "/"}),
    "list_jobs": code("GET", "/jobs"),
    "pause": code("POST", "/queue/pause"),
}
with open(sys.argv[2], "w") as fh:
    json.dump(out, fh)
"""


def python_worker(server: ServerProcess) -> subprocess.Popen[bytes]:
    with open(server.logs_dir / "worker-py.log", "wb") as log:
        return subprocess.Popen(
            [*WHIRR, "worker", "--server", server.url, "--data-dir", str(server.data_dir)],
            env=server.env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )


def rust_worker(server: ServerProcess) -> subprocess.Popen[bytes]:
    binary = rust_worker_binary()
    env = {k: v for k, v in server.env.items() if k != "WHIRR_SERVER_URL"}
    with open(server.logs_dir / "worker-rust.log", "wb") as log:
        return subprocess.Popen(
            [str(binary), "-s", server.url, "-d", str(server.data_dir), "--poll-interval", "0.5"],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )


def logs(server: ServerProcess) -> str:
    return "\n".join(p.read_text(errors="replace") for p in server.logs_dir.glob("*.log"))


@pytest.mark.parametrize("kind", ["python", "rust"])
def test_a_job_gets_a_run_token_for_its_own_run_only(
    server: ServerProcess, tmp_path: Path, kind: str
) -> None:
    work = tmp_path / "work"
    work.mkdir()
    (work / "probe.py").write_text(PROBE)
    probe = work / "probe.json"
    with server.http() as c:
        # Another run the job's token must not reach (queued, never run: no worker yet).
        other = c.post("/jobs", json={"command_argv": ["true"], "workdir": str(work)}).json()
        other_run = c.get(f"/jobs/{other['job_id']}").json()["run_id"]
        c.post(f"/jobs/{other['job_id']}/cancel")
        job_id = c.post(
            "/jobs",
            json={
                "command_argv": [sys.executable, "probe.py", other_run, str(probe)],
                "workdir": str(work),
            },
        ).json()["job_id"]
        worker = python_worker(server) if kind == "python" else rust_worker(server)
        try:
            done = ("completed", "failed")
            wait_for(lambda: c.get(f"/jobs/{job_id}").json()["status"] in done, 120)
        finally:
            stop_process(worker)
        job = c.get(f"/jobs/{job_id}").json()
        assert job["status"] == "completed", logs(server)
        assert job.get("run_token") is None  # only the claim's answer carries it
        seen = json.loads(probe.read_text())
        token = seen.pop("token")
        worker_token = server.token or ""
        assert worker_token and token and token != worker_token and worker_token not in token
        assert seen == {
            "attach": 200,
            "summary": 200,
            "get_own": 200,
            "other_summary": 403,
            "other_get": 403,
            "submit": 403,
            "list_jobs": 403,
            "pause": 403,
        }
        assert c.get(f"/runs/{job['run_id']}").json()["summary"] == {"acc": 0.5}
    # The attempt ended: its token no longer works, not even on its own run.
    ended = httpx.get(
        f"{server.url}/api/v1/runs/{job['run_id']}",
        headers={"Authorization": f"Bearer {token}"},
        timeout=30,
    )
    assert ended.status_code == 403 and "ended" in ended.json()["detail"]


def test_a_forged_run_token_is_refused(server: ServerProcess, tmp_path: Path) -> None:
    with server.http() as c:
        job_id = c.post("/jobs", json={"command_argv": ["true"], "workdir": str(tmp_path)}).json()[
            "job_id"
        ]
        claimed = c.post("/jobs/claim", json={"worker_id": "w1"}).json()["job"]
    token = claimed["run_token"]
    assert claimed["id"] == job_id and token.startswith("whirr_run.")
    run = f"{server.url}/api/v1/runs/{claimed['run_id']}"
    # Let in (404: the job has not attached its run yet), where the forgeries are 403.
    assert httpx.get(run, headers={"Authorization": f"Bearer {token}"}).status_code == 404
    forged = token[:-1] + ("0" if token[-1] != "0" else "1")
    assert httpx.get(run, headers={"Authorization": f"Bearer {forged}"}).status_code == 403
    # A token for another attempt of the same job (made with the right shape) is refused.
    other_attempt = token.replace(f".{claimed['attempt']}.", f".{claimed['attempt'] + 1}.", 1)
    assert httpx.get(run, headers={"Authorization": f"Bearer {other_attempt}"}).status_code == 403


def test_no_auth_servers_hand_out_no_run_token(tmp_path: Path) -> None:
    server = ServerProcess(tmp_path, token=None)
    try:
        with server.http() as c:
            c.post("/jobs", json={"command_argv": ["true"], "workdir": str(tmp_path)})
            claimed = c.post("/jobs/claim", json={"worker_id": "w1"}).json()["job"]
        assert claimed.get("run_token") is None
    finally:
        server.stop()


if __name__ == "__main__":
    sys.exit(pytest.main([__file__]))
