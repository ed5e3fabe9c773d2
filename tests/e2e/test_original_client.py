"""The original whirr (0.5.3, from PyPI), unchanged, against this ``whirr server`` (issue 20).

Its ``WhirrClient`` and its remote worker (``whirr worker --server URL --data-dir DIR``)
run from a venv of their own, in a clean environment outside this repository, so nothing
of this whirr is imported. That client sends no token: it reaches a ``--no-auth`` loopback
server as it is, and a server with a token through the token given as the Basic-auth
password in the URL (``http://whirr:TOKEN@host:port``, which httpx sends).

Installing it needs PyPI: without it the tests are skipped locally and fail under CI.
``WHIRR_TEST_ORIGINAL_PYTHON`` may name the python of a venv that has it already.
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from original_whirr import clean_env, original_venv_python
from server_process import ServerProcess, stop_process

#: Run by the original's python: the calls SPEC.md's HTTP table promises it, in order.
CLIENT_SCRIPT = r"""
import json, sys, time
import whirr
from whirr.client import WhirrClient, WhirrClientError

url, workdir = sys.argv[1], sys.argv[2]
out = {"module": whirr.__file__}
with WhirrClient(url) as c:
    out["status"] = c.get_status().model_dump(mode="json")
    job = c.submit_job(
        ["sh", "-c",
         'echo hello-from-the-original; '
         'printf \'{"_idx":0,"_timestamp":"2025-01-01T00:00:00Z","step":0,"loss":0.5}\\n\' '
         '> "$WHIRR_RUN_DIR/metrics.jsonl"; '
         'printf weights > "$WHIRR_RUN_DIR/artifacts/model.bin"'],
        workdir, name="original", config={"lr": 0.1}, tags=["original"],
    )
    out["submitted"] = job.model_dump(mode="json")
    out["job"] = c.get_job(job.job_id).model_dump(mode="json")
    out["active"] = [j.id for j in c.get_active_jobs()]
    done = c.wait_for_job(job.job_id, poll_interval=0.2, timeout=90)
    out["done"] = done.model_dump(mode="json")
    out["workers"] = [w.model_dump(mode="json") for w in c.get_workers()]
    out["runs"] = [r.model_dump(mode="json") for r in c.get_runs(tag="original")]
    run_id = done.run_id
    out["run"] = c.get_run(run_id).model_dump(mode="json")
    out["missing_run"] = c.get_run("no-such-run")
    out["missing_job"] = c.get_job(999999)
    out["metrics"] = [m.model_dump(mode="json") for m in c.get_metrics(run_id)]
    out["artifacts"] = [a.model_dump(mode="json") for a in c.list_artifacts(run_id)]
    out["output_log"] = c.get_artifact(run_id, "output.log").decode()
    out["model"] = c.get_artifact(run_id, "artifacts/model.bin").decode()
    try:
        c.get_artifact(run_id, "../../token")
        out["escape"] = "served"
    except WhirrClientError as exc:
        out["escape"] = str(exc)
    slow = c.submit_job(["sleep", "300"], workdir, name="to-cancel")
    deadline = time.monotonic() + 60
    while c.get_job(slow.job_id).status != "running" and time.monotonic() < deadline:
        time.sleep(0.2)
    out["cancel"] = c.cancel_job(slow.job_id).model_dump(mode="json")
    out["cancelled"] = c.wait_for_job(slow.job_id, poll_interval=0.2, timeout=90).status
print(json.dumps(out))
"""


@pytest.fixture(scope="module")
def original_python(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The python of a venv with the original whirr 0.5.3 from PyPI (one per session)."""
    return original_venv_python(tmp_path_factory)


@pytest.fixture(params=["no-auth", "token-in-url"])
def server(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[ServerProcess, str]]:
    """Our server, and the URL the original is given for it."""
    if request.param == "no-auth":
        proc = ServerProcess(tmp_path, token=None)
        url = proc.url
    else:
        proc = ServerProcess(tmp_path)
        url = proc.url.replace("http://", f"http://whirr:{proc.token}@")
    yield proc, url
    proc.stop()


def test_the_original_client_and_worker_work_unchanged(
    original_python: Path, server: tuple[ServerProcess, str], tmp_path: Path
) -> None:
    proc, url = server
    outside = tmp_path / "outside"  # cwd and HOME for the original: not this repository
    outside.mkdir()
    env = clean_env(outside)
    worker_log = proc.logs_dir / "original-worker.log"
    with open(worker_log, "wb") as log:
        worker = subprocess.Popen(
            [str(original_python.parent / "whirr"), "worker", "--server", url, "--data-dir",
             str(proc.data_dir)],
            cwd=outside, env=env, stdout=log, stderr=subprocess.STDOUT,
        )  # fmt: skip
    try:
        script = outside / "original_client.py"
        script.write_text(CLIENT_SCRIPT)
        done = subprocess.run(
            [str(original_python), str(script), url, str(outside)],
            cwd=outside, env=env, capture_output=True, text=True, timeout=300,
        )  # fmt: skip
    finally:
        stop_process(worker)
    assert done.returncode == 0, (
        f"{done.stdout}\n{done.stderr}\nworker:\n{worker_log.read_text()}\nserver:\n{proc.output()}"
    )
    out = json.loads(done.stdout.splitlines()[-1])
    assert str(original_python.parents[1]) in out["module"]  # the original, not this whirr
    assert out["status"]["workers_online"] >= 0
    job_id = out["submitted"]["job_id"]
    assert out["job"]["id"] == job_id and out["job"]["name"] == "original"
    assert out["job"]["config"] == {"lr": 0.1} and out["job"]["tags"] == ["original"]
    assert job_id in out["active"]
    assert out["done"]["status"] == "completed" and out["done"]["exit_code"] == 0
    run_id = out["done"]["run_id"]
    assert run_id == f"job-{job_id}"
    assert any(w["id"].endswith(":default") for w in out["workers"])  # the original worker
    assert [r["id"] for r in out["runs"]] == [run_id]
    assert out["run"]["id"] == run_id and out["run"]["status"] == "completed"
    assert out["missing_run"] is None and out["missing_job"] is None
    assert [(m["step"], m["loss"]) for m in out["metrics"]] == [(0, 0.5)]
    listed = {a["path"] for a in out["artifacts"]}
    assert {"output.log", "metrics.jsonl", "artifacts/model.bin"} <= listed, listed
    assert "hello-from-the-original" in out["output_log"]
    assert out["model"] == "weights"
    assert out["escape"] != "served"
    assert out["cancel"]["previous_status"] == "running"
    assert out["cancelled"] == "cancelled"


def test_the_token_as_basic_auth_password_is_accepted(tmp_path: Path) -> None:
    """What httpx sends for ``http://whirr:TOKEN@host``: any user name, the token as the
    password; a wrong password is refused like a wrong bearer token."""
    proc = ServerProcess(tmp_path)
    try:
        status = f"{proc.url}/api/v1/status"
        for user in ("whirr", "anyone", ""):
            assert httpx.get(status, auth=(user, proc.token or ""), timeout=10).status_code == 200
        with_token = proc.url.replace("http://", f"http://whirr:{proc.token}@")
        assert httpx.get(f"{with_token}/api/v1/status", timeout=10).status_code == 200
        assert httpx.get(status, auth=("whirr", "wrong"), timeout=10).status_code == 403
        for header in ("Basic", "Basic !!!", "Basic d2hpcnI="):  # no password: "whirr"
            answer = httpx.get(status, headers={"Authorization": header}, timeout=10)
            assert answer.status_code == 401, header
    finally:
        proc.stop()
