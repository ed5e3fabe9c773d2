"""Regression tests for the wrong answers the local/remote split gave (issue 15), each run
through the real CLI against a real ``whirr server`` and, where it matters, a project."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from server_process import WHIRR, ServerProcess, run_cli

from whirr import client as client_module
from whirr.client import WhirrClient


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    proc = ServerProcess(Path(tmp_path_factory.mktemp("seam")))
    yield proc
    proc.stop()


@pytest.fixture
def work(tmp_path: Path) -> Path:
    """A directory that is no whirr project (the server is the only place to look)."""
    return tmp_path


def cli_json(*args: str, server: ServerProcess, cwd: Path) -> object:
    done = run_cli(args[0], "--json", *args[1:], server=server, cwd=cwd)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def local_cli(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k not in ("WHIRR_SERVER_URL", "WHIRR_TOKEN")}
    return subprocess.run(
        [*WHIRR, *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=60
    )


def test_submit_to_a_server_takes_every_scheduling_option(
    server: ServerProcess, work: Path
) -> None:
    first = cli_json(
        "submit", "-n", "opts", "-t", "a,b", "--gpus", "0", "-p", "5", "--retries", "2",
        "--timeout", "1h", "--max-attempts", "4", "--", "true",
        server=server, cwd=work,
    )  # fmt: skip
    assert isinstance(first, dict)
    assert (first["name"], first["tags"], first["gpus"], first["priority"]) == (
        "opts",
        ["a", "b"],
        0,
        5,
    )
    assert (first["retries"], first["timeout_seconds"], first["max_attempts"]) == (2, 3600, 4)
    second = cli_json(
        "submit", "--after", str(first["id"]), "--after-any", "--", "true", server=server, cwd=work
    )
    assert isinstance(second, dict)
    assert (second["after"], second["after_any"]) == ([first["id"]], True)
    assert second["waiting"] == f"waiting on #{first['id']}"


def test_a_job_no_worker_can_run_says_why(server: ServerProcess, work: Path) -> None:
    with WhirrClient(server.url, token=server.token) as c:
        c.register_worker("seam-one-gpu", "box", gpu_ids=[0])
        job_id = c.submit(["true"], str(work), gpus=2).job_id
    shown = cli_json("status", str(job_id), server=server, cwd=work)
    assert isinstance(shown, dict)
    assert shown["waiting"] == "unschedulable: needs 2 GPU(s); the largest live worker has 1"
    printed = run_cli("status", f"#{job_id}", server=server, cwd=work).stdout
    assert "Waiting:   unschedulable: needs 2 GPU(s)" in printed


def test_jobs_are_named_by_number_hash_or_job_id(server: ServerProcess, work: Path) -> None:
    with WhirrClient(server.url, token=server.token) as c:
        job_id = c.submit(["true"], str(work)).job_id
        claimed = c.claim("seam-refs")
        while claimed is not None and claimed.id != job_id:  # earlier tests' jobs
            c.started(claimed.id, "seam-refs", claimed.attempt, 1)
            c.complete(claimed.id, "seam-refs", claimed.attempt, 0)
            claimed = c.claim("seam-refs")
        assert claimed is not None
        c.started(job_id, "seam-refs", claimed.attempt, 1)
        c.complete(job_id, "seam-refs", claimed.attempt, 0)
    for ref in (str(job_id), f"#{job_id}", f"job-{job_id}"):
        status = cli_json("status", ref, server=server, cwd=work)
        assert isinstance(status, dict) and status["id"] == job_id, ref
        show = cli_json("show", ref, server=server, cwd=work)
        assert isinstance(show, dict) and show["id"] == f"job-{job_id}", ref
        logs = run_cli("logs", ref, server=server, cwd=work)
        assert logs.returncode == 0, (ref, logs.stderr)
    bad = run_cli("logs", "job-x", server=server, cwd=work)
    assert bad.returncode == 2 and "like 12, #12 or job-12" in bad.stderr


def test_a_url_given_to_dash_s_status_points_to_server(server: ServerProcess, work: Path) -> None:
    for command in ("status", "runs"):
        done = run_cli(command, "-s", "http://head:8080", server=server, cwd=work)
        assert done.returncode == 2
        assert "use --server http://head:8080" in done.stderr, done.stderr


def test_status_json_has_one_shape_locally_and_remotely(
    server: ServerProcess, tmp_path: Path
) -> None:
    project = tmp_path / "project"
    project.mkdir()
    assert local_cli("init", cwd=project).returncode == 0
    assert local_cli("submit", "--", "true", cwd=project).returncode == 0
    local = json.loads(local_cli("status", "--json", cwd=project).stdout)
    with WhirrClient(server.url, token=server.token) as c:
        c.submit(["true"], str(tmp_path))
    remote = cli_json("status", server=server, cwd=tmp_path)
    assert isinstance(remote, dict)
    assert set(local) == set(remote) == {"jobs"}
    assert set(local["jobs"][0]) == set(remote["jobs"][0])


def test_every_metric_row_is_read_page_by_page(
    server: ServerProcess, work: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with WhirrClient(server.url, token=server.token) as c:
        c.cancel_all_queued()
        job_id = c.submit(["true"], str(work)).job_id
        job = c.claim("seam-pages")
        assert job is not None and job.id == job_id
        c.started(job_id, "seam-pages", job.attempt, 1)
        rows = "".join(f'{{"_idx": {i}, "loss": {10 - i}}}\n' for i in range(10))
        run_dir = server.data_dir / "runs" / job.run_id
        run_dir.mkdir(parents=True, exist_ok=True)
        (run_dir / "metrics.jsonl").write_text(rows)
        c.complete(job_id, "seam-pages", job.attempt, 0)
        # Pages of 3 rows: before, only the first page came back.
        monkeypatch.setattr(client_module, "METRICS_PAGE", 3)
        assert [r["_idx"] for r in c.metrics(job.run_id)] == list(range(10))
        assert [r["_idx"] for r in c.metrics(job.run_id, since=7)] == [7, 8, 9]
    show = cli_json("show", job.run_id, server=server, cwd=work)
    assert isinstance(show, dict)
    assert show["metrics_rows"] == 10 and show["last_metrics"] == {"loss": 1}


def test_the_python_side_precedence_is_the_clis(tmp_path: Path, server: ServerProcess) -> None:
    """open_whirr: --server beats WHIRR_SERVER_URL beats the enclosing project."""
    project = tmp_path / "p"
    project.mkdir()
    assert local_cli("init", cwd=project).returncode == 0
    code = (
        "from whirr.facade import open_whirr\n"
        "with open_whirr() as w: print(w.label)\n"
        "with open_whirr('http://127.0.0.1:9') as w: print(w.label)\n"
    )
    env = {**os.environ, "WHIRR_SERVER_URL": server.url}
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=project, env=env, capture_output=True, text=True
    ).stdout.split("\n")
    assert out[0] == f"server {server.url}"
    assert out[1] == "server http://127.0.0.1:9"
    env.pop("WHIRR_SERVER_URL")
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=project, env=env, capture_output=True, text=True
    ).stdout.split("\n")
    assert out[0] == f"project {project.resolve()}"
