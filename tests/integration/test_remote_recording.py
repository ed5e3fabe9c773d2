"""A tracked script under a remote worker whose server cannot be reached or never
answers: the run goes on, its files are complete, one warning says what was not recorded,
and a SIGTERM still ends it at once (the flush of unsent events is bounded). And a direct
run with a server named: recorded there (the precedence of every command)."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest
from server_process import ServerProcess

from whirr.client import WhirrClient
from whirr.project import Project
from whirr.services import Jobs
from whirr.services.errors import InvalidRequest, InvalidState, NotFound
from whirr.wire.run_events import RunStartRequest

WARNING = "could not record the run on the server"

SCRIPT = textwrap.dedent("""\
    import pathlib, sys, time, whirr
    run = whirr.init(config={"lr": 0.1}, system_metrics=False, capture_git=False,
                     capture_pip=False)
    for step in range(3):
        run.log({"loss": 1.0 / (step + 1)}, step=step)
        run.summary({"best": 1.0 / (step + 1)})
    pathlib.Path("model.pt").write_bytes(b"weights")
    run.save_artifact("model.pt")
    print("ready", flush=True)
    if sys.argv[1:] == ["wait"]:
        time.sleep(120)
    run.finish()
""")


def job_env(tmp_path: Path, server_url: str) -> dict[str, str]:
    """What a remote worker gives its job."""
    run_dir = tmp_path / "data" / "runs" / "job-7"
    run_dir.mkdir(parents=True)
    return {
        **os.environ,
        "WHIRR_RUN_DIR": str(run_dir),
        "WHIRR_RUN_ID": "job-7",
        "WHIRR_JOB_ID": "7",
        "WHIRR_SERVER_URL": server_url,
        "WHIRR_TOKEN": "t",
    }


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def silent_server() -> Iterator[str]:
    """A server that accepts connections and never answers."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(16)
    yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    sock.close()


def test_an_unreachable_server_costs_one_warning_and_no_data(tmp_path: Path) -> None:
    env = job_env(tmp_path, f"http://127.0.0.1:{closed_port()}")
    (tmp_path / "work").mkdir()
    (tmp_path / "work" / "train.py").write_text(SCRIPT)
    done = subprocess.run(
        [sys.executable, "train.py"],
        cwd=tmp_path / "work",
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert done.stderr.count(WARNING) == 1, done.stderr
    run_dir = Path(env["WHIRR_RUN_DIR"])
    meta = json.loads((run_dir / "meta.json").read_text())
    assert (meta["status"], meta["summary"]) == ("completed", {"best": 1 / 3})
    assert (run_dir / "artifacts" / "model.pt").read_bytes() == b"weights"
    assert len((run_dir / "metrics.jsonl").read_text().splitlines()) == 3


def test_sigterm_ends_a_run_whose_server_never_answers(tmp_path: Path, silent_server: str) -> None:
    env = job_env(tmp_path, silent_server)
    (tmp_path / "work").mkdir()
    (tmp_path / "work" / "train.py").write_text(SCRIPT)
    child = subprocess.Popen(
        [sys.executable, "train.py", "wait"],
        cwd=tmp_path / "work",
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert child.stdout is not None
        assert child.stdout.readline().strip() == "ready"  # summaries queued, not blocking
        child.send_signal(signal.SIGTERM)
        _, stderr = child.communicate(timeout=60)
    finally:
        if child.poll() is None:
            child.kill()
            child.communicate()
    assert child.returncode == -signal.SIGTERM, stderr
    assert stderr.count(WARNING) == 1, stderr
    meta = json.loads((Path(env["WHIRR_RUN_DIR"]) / "meta.json").read_text())
    assert (meta["status"], meta["summary"]) == ("killed", {"best": 1 / 3})


def test_a_local_workers_job_records_locally_even_with_a_server_url(
    project: Project, tmp_path: Path
) -> None:
    """A shell that exported WHIRR_SERVER_URL (for ``whirr submit -s``) to a local worker:
    its jobs' runs live in the project, so they are recorded there, not on a server."""
    store = project.open_store()
    try:
        jobs = Jobs(store)
        job = jobs.submit(["python", "x.py"], str(project.root), name="local-job")
        jobs.claim("w1", 60)
        run_dir = project.run_dir(job.run_id)
        run_dir.mkdir(parents=True)
        jobs.started(job.id, "w1", job.attempt, 1, run_dir=str(run_dir), hostname="h")
        env = {
            **os.environ,
            "WHIRR_JOB_ID": str(job.id),
            "WHIRR_RUN_ID": job.run_id,
            "WHIRR_RUN_DIR": str(run_dir),
            "WHIRR_SERVER_URL": f"http://127.0.0.1:{closed_port()}",
        }
        (project.root / "train.py").write_text(SCRIPT)
        done = subprocess.run(
            [sys.executable, "train.py"],
            cwd=project.root,
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert done.returncode == 0 and WARNING not in done.stderr, done.stderr
        view = store.run(job.run_id)
        assert view is not None and view.summary == {"best": 1 / 3}
        assert [a.path for a in view.artifacts] == ["model.pt"]
    finally:
        store.close()


def direct_env(home: Path, server: ServerProcess) -> dict[str, str]:
    """A shell with a server exported, outside any worker's job."""
    env = {
        k: v for k, v in os.environ.items() if k not in ("WHIRR_RUN_DIR", "WHIRR_RUN_ID", "HOME")
    }
    home.mkdir(parents=True, exist_ok=True)
    return {
        **env,
        "HOME": str(home),
        "WHIRR_SERVER_URL": server.url,
        "WHIRR_TOKEN": server.token or "",
    }


def test_a_direct_run_with_a_server_url_records_on_the_server(
    project: Project, tmp_path: Path
) -> None:
    """``python train.py`` inside a project, with WHIRR_SERVER_URL exported: the server
    wins, as for every command (the files are written here, in the project's runs
    directory, and shipped to the server)."""
    server = ServerProcess(tmp_path / "srv")
    try:
        (project.root / "train.py").write_text(SCRIPT)
        done = subprocess.run(
            [sys.executable, "train.py"],
            cwd=project.root,
            env=direct_env(tmp_path / "home", server),
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert done.returncode == 0 and WARNING not in done.stderr, done.stderr
        with WhirrClient(server.url, token=server.token) as client:
            [run] = client.runs()
        assert run.id.startswith("local-") and run.job_id is None
        assert (run.status, run.config, run.summary) == ("completed", {"lr": 0.1}, {"best": 1 / 3})
        # Its start said its files are shipped: the server's copy is where readers look,
        # the project's directory is where the script wrote them.
        assert (run.files_mode, run.worker_run_dir) == ("shipped", str(project.run_dir(run.id)))
        assert run.run_dir == str(server.data_dir / "runs" / run.id) and run.pid is not None
        store = project.open_store()
        try:
            assert store.runs(None, None, None) == []  # not recorded in the project too
        finally:
            store.close()
        rows = (project.run_dir(run.id) / "metrics.jsonl").read_text().splitlines()
        assert len(rows) == 3
        # A script that fails says so (with its exit code), and init(server=) names the
        # server explicitly.
        failing = textwrap.dedent(f"""\
            import sys, whirr
            run = whirr.init(server={server.url!r}, system_metrics=False, capture_git=False,
                             capture_pip=False)
            sys.exit(3)
        """)
        (tmp_path / "alone").mkdir()
        (tmp_path / "alone" / "fail.py").write_text(failing)
        env = direct_env(tmp_path / "home", server)
        del env["WHIRR_SERVER_URL"]
        done = subprocess.run(
            [sys.executable, "fail.py"],
            cwd=tmp_path / "alone",
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert done.returncode == 3 and WARNING not in done.stderr, done.stderr
        assert not (tmp_path / "alone" / ".whirr").exists()  # no project made for it
        with WhirrClient(server.url, token=server.token) as client:
            ended = [r for r in client.runs() if r.id != run.id]
        assert [(r.status, r.exit_code) for r in ended] == [("failed", 3)]
        assert (tmp_path / "home" / ".whirr" / "runs" / ended[0].id / "meta.json").exists()
    finally:
        server.stop()


def test_direct_run_routes_refuse_what_is_not_a_direct_run(tmp_path: Path) -> None:
    server = ServerProcess(tmp_path / "srv")
    try:
        with WhirrClient(server.url, token=server.token) as client:
            job = client.submit(["true"], "/", name="queued")
            client.register_worker("w1", "box")
            assert client.claim("w1") is not None
            client.started(job.job_id, "w1", 1, 4242)
            with pytest.raises(InvalidRequest):  # a script cannot take a job's run
                client.start_run(RunStartRequest(run_id=job.run_id))
            with pytest.raises(InvalidState):  # nor end one: its worker does
                client.finish_run(job.run_id, "completed")
            started = client.start_run(RunStartRequest(run_id="local-1", name="a", hostname="h"))
            assert (started.status, started.name, started.hostname) == ("running", "a", "h")
            with pytest.raises(InvalidState):  # an id the log knows is not replaced
                client.start_run(RunStartRequest(run_id="local-1"))
            assert client.finish_run("local-1", "killed", "SIGTERM").status == "killed"
            resumed = client.start_run(RunStartRequest(run_id="local-1", resume=True))
            assert (resumed.status, resumed.name) == ("running", "a")
            with pytest.raises(NotFound):
                client.start_run(RunStartRequest(run_id="local-2", resume=True))
            with pytest.raises(NotFound):
                client.finish_run("local-3", "completed")
    finally:
        server.stop()
