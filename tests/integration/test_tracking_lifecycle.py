"""Tracked scripts in real child processes: what they record, and truthful ends on
exceptions, SIGTERM, SIGKILL and normal exits."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from whirr.project import Project
from whirr.projections import RunView
from whirr.run import read_meta, read_metrics
from whirr.services import Jobs
from whirr.services.runs import Runs

TESTS = Path(__file__).resolve().parents[1]
META_KEYS = {
    "id",
    "name",
    "tags",
    "status",
    "started_at",
    "finished_at",
    "duration_seconds",
    "summary",
    "config_file",
    "metrics_file",
    "artifacts_dir",
    "git",
    "job_id",
}


def script(body: str) -> str:
    return "import sys, os, time, whirr\n" + textwrap.dedent(body)


def run_child(
    code: str, cwd: Path, env: dict[str, str] | None = None, timeout: float = 60
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", code],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, **(env or {})},
    )


Spawn = Callable[..., subprocess.Popen[str]]


@pytest.fixture
def spawn() -> Iterator[Spawn]:
    """Start child scripts with piped stdio; their pipes are closed after the test."""
    children: list[subprocess.Popen[str]] = []

    def start(code: str, cwd: Path, env: dict[str, str] | None = None) -> subprocess.Popen[str]:
        child = subprocess.Popen(
            [sys.executable, "-u", "-c", code],
            cwd=cwd,
            text=True,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env={**os.environ, **(env or {})},
        )
        children.append(child)
        return child

    yield start
    for child in children:
        if child.poll() is None:
            child.kill()
        child.communicate()


def only_run(project: Project) -> RunView:
    store = project.open_store()
    try:
        runs = Runs(store).list()
    finally:
        store.close()
    assert len(runs) == 1, runs
    return runs[0]


def test_direct_run_records_events_and_files(project: Project, tmp_path: Path) -> None:
    subprocess.run(["git", "init", "-q"], cwd=project.root, check=True)
    (project.root / "model.bin").write_bytes(b"\0" * 100)
    result = run_child(
        script("""
        with whirr.init(name="base", config={"lr": 0.1}, tags=["a", "b"],
                        system_metrics_interval=0.1) as run:
            assert run.run_id.startswith("local-") and run.job_id is None
            for i in range(3):
                run.log({"loss": 1.0 / (i + 1)}, step=i)
            run.summary({"best": 0.33})
            run.save_artifact("model.bin", "ckpt/best.bin")
            time.sleep(0.3)
        print(run.run_id)
    """),
        project.root,
    )
    assert result.returncode == 0, result.stderr
    run_id = result.stdout.strip()
    view = only_run(project)
    assert (view.id, view.name, view.status, view.tags) == (run_id, "base", "completed", ["a", "b"])
    assert view.config == {"lr": 0.1} and view.summary == {"best": 0.33}
    assert view.pid is not None and view.git is not None and view.git["dirty"] is True
    assert [(a.path, a.size) for a in view.artifacts] == [("ckpt/best.bin", 100)]
    run_dir = project.run_dir(run_id)
    meta = read_meta(run_dir)
    assert meta is not None and set(meta) >= META_KEYS
    assert meta["status"] == "completed" and meta["summary"] == {"best": 0.33}
    assert meta["finished_at"].endswith("Z") and meta["duration_seconds"] > 0
    assert [r["step"] for r in read_metrics(run_dir)] == [0, 1, 2]
    assert (run_dir / "artifacts" / "ckpt" / "best.bin").stat().st_size == 100
    assert "msgspec==" in (run_dir / "requirements.txt").read_text()
    assert set(read_meta(run_dir) or {}) >= {"git"}
    assert (run_dir / "git.json").exists() and (run_dir / "system.jsonl").exists()


def test_capture_can_be_turned_off(project: Project) -> None:
    result = run_child(
        script("""
        run = whirr.init(capture_git=False, capture_pip=False, system_metrics=False)
        run.finish()
        print(run.run_dir)
    """),
        project.root,
    )
    run_dir = Path(result.stdout.strip())
    assert not (run_dir / "git.json").exists() and not (run_dir / "requirements.txt").exists()
    assert not (run_dir / "system.jsonl").exists()


def test_exception_in_context_manager_fails_and_propagates(project: Project) -> None:
    result = run_child(
        script("""
        with whirr.init(system_metrics=False, capture_pip=False) as run:
            run.log({"x": 1})
            raise ValueError("bad batch")
    """),
        project.root,
    )
    assert result.returncode == 1 and "ValueError: bad batch" in result.stderr
    view = only_run(project)
    assert view.status == "failed" and "bad batch" in (view.error or "")
    assert (read_meta(view.run_dir) or {})["status"] == "failed"


@pytest.mark.parametrize(
    ("ending", "status"),
    [
        ("raise RuntimeError('uncaught')", "failed"),
        ("pass", "completed"),
        ("raise KeyboardInterrupt", "killed"),
    ],
)
def test_ends_without_finish(project: Project, ending: str, status: str) -> None:
    run_child(
        script(f"""
        run = whirr.init(system_metrics=False, capture_pip=False)
        run.log({{"x": 1}})
        {ending}
    """),
        project.root,
    )
    assert only_run(project).status == status


@pytest.mark.parametrize(
    ("ending", "code", "status", "error"),
    [
        ("sys.exit(1)", 1, "failed", "exited with SystemExit(1)"),
        ("sys.exit(7)", 7, "failed", "exited with SystemExit(7)"),
        ("sys.exit('bad config')", 1, "failed", "exited with SystemExit('bad config')"),
        ("exit(2)", 2, "failed", "exited with SystemExit(2)"),  # the site builtin
        ("quit(3)", 3, "failed", "exited with SystemExit(3)"),
        ("import argparse; argparse.ArgumentParser().parse_args(['--nope'])", 2, "failed", None),
        ("sys.exit(0)", 0, "completed", None),
        ("sys.exit()", 0, "completed", None),
        # A SystemExit only a thread raised ends that thread, not the script.
        (
            "import threading; t = threading.Thread(target=sys.exit, args=(4,)); t.start(); "
            "t.join()",
            0,
            "completed",
            None,
        ),
        # An exit the script caught and went on from, then a clean exit.
        ("try:\n    sys.exit(5)\nexcept SystemExit:\n    pass\nsys.exit(0)", 0, "completed", None),
    ],
)
def test_sys_exit_outside_with_ends_the_run_with_its_code(
    project: Project, ending: str, code: int, status: str, error: str | None
) -> None:
    """SystemExit never reaches sys.excepthook: without a ``with`` block the run still
    ends ``failed`` for a non-zero (or string) exit, naming it."""
    body = "run = whirr.init(system_metrics=False, capture_pip=False)\n" + ending + "\n"
    result = run_child(script(body), project.root)
    assert result.returncode == code, result.stderr
    view = only_run(project)
    assert view.status == status, view.error
    if error is not None:
        assert view.error == error
    # The exit code the script asked for is the run's, as a job's would be (a thread's
    # SystemExit is no exit of the script: none then).
    assert view.exit_code == (None if "threading" in ending else code)
    assert (read_meta(view.run_dir) or {})["status"] == status


@pytest.mark.parametrize(("ending", "code"), [("sys.exit(9)", 9), ("sys.exit('no data')", 1)])
def test_sys_exit_inside_with_records_its_exit_code(
    project: Project, ending: str, code: int
) -> None:
    body = "with whirr.init(system_metrics=False, capture_pip=False):\n    " + ending + "\n"
    result = run_child(script(body), project.root)
    assert result.returncode == code, result.stderr
    view = only_run(project)
    assert (view.status, view.exit_code) == ("failed", code)


def test_log_after_finish_raises_and_finish_is_idempotent(project: Project) -> None:
    result = run_child(
        script("""
        run = whirr.init(system_metrics=False, capture_pip=False)
        run.finish(); run.finish()
        try:
            run.log({"x": 1})
        except RuntimeError as exc:
            print("refused:", exc)
    """),
        project.root,
    )
    assert "refused:" in result.stdout and only_run(project).status == "completed"


def test_sigterm_ends_the_run_killed_and_the_process_by_the_signal(
    project: Project, spawn: Spawn
) -> None:
    child = spawn(
        script("""
        run = whirr.init(system_metrics=False, capture_pip=False)
        print("ready", flush=True)
        i = 0
        while True:
            run.log({"i": i}); i += 1; time.sleep(0.001)
    """),
        project.root,
    )
    assert child.stdout is not None and child.stdout.readline().strip() == "ready"
    child.send_signal(signal.SIGTERM)
    assert child.wait(timeout=30) == -signal.SIGTERM
    view = only_run(project)
    assert view.status == "killed" and "SIGTERM" in (view.error or "")
    assert (read_meta(view.run_dir) or {})["status"] == "killed"
    read_metrics(view.run_dir)  # whole and readable


def test_sigterm_chains_to_the_scripts_own_handler(
    project: Project, tmp_path: Path, spawn: Spawn
) -> None:
    flag = tmp_path / "handled"
    child = spawn(
        script(f"""
        import signal
        def handler(signum, frame):
            open({str(flag)!r}, "w").write("yes")
            sys.exit(3)
        signal.signal(signal.SIGTERM, handler)
        run = whirr.init(system_metrics=False, capture_pip=False)
        print("ready", flush=True)
        time.sleep(60)
    """),
        project.root,
    )
    assert child.stdout is not None and child.stdout.readline().strip() == "ready"
    child.send_signal(signal.SIGTERM)
    assert child.wait(timeout=30) == 3
    assert flag.read_text() == "yes" and only_run(project).status == "killed"


def test_sigkill_loses_no_acknowledged_row(project: Project, spawn: Spawn) -> None:
    child = spawn(
        script("""
        run = whirr.init(system_metrics=False, capture_pip=False)
        print(run.run_id, flush=True)
        i = 0
        while True:
            run.log({"loss": 1.0 / (i + 1), "pad": "x" * (i % 50)}, step=i)
            print(i, flush=True)  # acknowledged: log() returned
            i += 1
    """),
        project.root,
    )
    assert child.stdout is not None
    run_id = child.stdout.readline().strip()
    acknowledged = -1
    while acknowledged < 2000:
        acknowledged = int(child.stdout.readline())
    child.kill()
    # Rows acknowledged after we stopped reading are still in the pipe.
    for line in child.stdout.read().split():
        acknowledged = int(line)
    child.wait(timeout=30)
    rows = read_metrics(project.run_dir(run_id))
    assert len(rows) >= acknowledged + 1
    assert [r["step"] for r in rows] == list(range(len(rows)))
    assert [r["_idx"] for r in rows] == list(range(len(rows)))
    assert only_run(project).status == "crashed"  # the pid is gone; nothing else was written


def test_resume_continues_the_metrics(project: Project) -> None:
    first = run_child(
        script("""
        run = whirr.init(name="long", config={"lr": 1}, system_metrics=False, capture_pip=False)
        for i in range(3):
            run.log({"x": i}, step=i)
        os._exit(0)  # dies without finishing
    """),
        project.root,
    )
    run_id = only_run(project).id
    assert first.returncode == 0 and only_run(project).status == "crashed"
    second = run_child(
        script(f"""
        run = whirr.init(resume={run_id!r}, system_metrics=False, capture_pip=False)
        assert run.name == "long" and run.config == {{"lr": 1}}, (run.name, run.config)
        run.log({{"x": 3}}, step=3)
        run.finish()
    """),
        project.root,
    )
    assert second.returncode == 0, second.stderr
    rows = read_metrics(project.run_dir(run_id))
    assert [(r["_idx"], r["x"]) for r in rows] == [(0, 0), (1, 1), (2, 2), (3, 3)]
    assert only_run(project).status == "completed"


def test_inside_a_worker_job_the_run_is_the_jobs(project: Project, spawn: Spawn) -> None:
    store = project.open_store()
    jobs = Jobs(store)
    job = jobs.submit(
        ["python", "x.py"],
        str(project.root),
        name="sweep-3",
        config={"lr": 0.1, "layers": 2},
        tags=["sweep"],
    )
    jobs.claim("w1", 60)
    run_dir = project.run_dir(job.run_id)
    run_dir.mkdir(parents=True)
    env = {"WHIRR_JOB_ID": str(job.id), "WHIRR_RUN_ID": job.run_id, "WHIRR_RUN_DIR": str(run_dir)}
    child = spawn(
        script("""
        sys.stdin.readline()  # as under a worker: the job's run has started
        run = whirr.init(name="ignored", config={"lr": 0.2}, tags=["mine"],
                         system_metrics=False, capture_pip=False)
        print(run.run_id, run.job_id, run.name, flush=True)
        run.log({"x": 1}); run.summary({"best": 1}); run.finish()
    """),
        project.root,
        env,
    )
    jobs.started(job.id, "w1", job.attempt, child.pid, run_dir=str(run_dir), hostname="h")
    out, _ = child.communicate("go\n", timeout=30)
    assert out.split() == [job.run_id, str(job.id), "sweep-3"]
    view = store.run(job.run_id)
    assert view is not None and view.name == "sweep-3" and view.job_id == job.id
    assert view.config == {"lr": 0.2, "layers": 2} and view.tags == ["sweep", "mine"]
    assert view.summary == {"best": 1} and view.pid == child.pid
    assert view.status == "running"  # the worker, not the script, records the job's end
    assert (read_meta(run_dir) or {})["status"] == "completed"
    jobs.finish(job.id, "w1", job.attempt, 0)
    assert store.run(job.run_id).status == "completed"  # type: ignore[union-attr]
    store.close()


def test_under_a_remote_worker_the_files_are_written_without_a_project(
    tmp_path: Path,
) -> None:
    # The events go to the server (tests/e2e/test_remote_tracking.py); this one is down.
    run_dir = tmp_path / "data" / "runs" / "job-9"
    run_dir.mkdir(parents=True)
    env = {
        "WHIRR_JOB_ID": "9",
        "WHIRR_RUN_ID": "job-9",
        "WHIRR_RUN_DIR": str(run_dir),
        "WHIRR_SERVER_URL": "http://127.0.0.1:9",
    }
    result = run_child(
        script("""
        with whirr.init(name="remote", system_metrics=False, capture_pip=False) as run:
            run.log({"x": 1})
    """),
        tmp_path,
        env,
    )
    assert result.returncode == 0
    assert result.stderr.count("could not record the run on the server") == 1, result.stderr
    assert (read_meta(run_dir) or {})["status"] == "completed"
    assert len(read_metrics(run_dir)) == 1
    assert not (tmp_path / ".whirr").exists()


def test_without_a_project_one_is_created_here(tmp_path: Path) -> None:
    work = tmp_path / "scratch"
    work.mkdir()
    result = run_child(
        script("""
        with whirr.init(system_metrics=False, capture_pip=False) as run:
            run.log({"x": 1})
    """),
        work,
        {"HOME": str(tmp_path / "home")},
    )
    assert result.returncode == 0 and "created one in" in result.stderr
    assert only_run(Project(work)).status == "completed"


def test_a_forked_child_never_ends_its_parents_run(project: Project, spawn: Spawn) -> None:
    child = spawn(
        script("""
        run = whirr.init(system_metrics=False, capture_pip=False)
        r, w = os.pipe()
        pid = os.fork()
        if pid == 0:  # like a DataLoader worker: inherits whirr's hooks
            os.write(w, b"up")
            time.sleep(60)
            os._exit(0)
        # Python drops a signal that reaches a child before its after-fork setup ends.
        os.read(r, 2)
        print(pid, flush=True)
        _, status = os.waitpid(pid, 0)
        print(os.WIFSIGNALED(status) and os.WTERMSIG(status), flush=True)
        run.log({"after": 1})
    """),
        project.root,
    )
    assert child.stdout is not None
    forked = int(child.stdout.readline())
    os.kill(forked, signal.SIGTERM)
    assert int(child.stdout.readline()) == signal.SIGTERM  # it died by the signal as usual
    assert child.wait(timeout=30) == 0
    view = only_run(project)
    assert view.status == "completed"  # not "killed": the child's SIGTERM was not the run's
    assert read_metrics(view.run_dir)[-1]["after"] == 1


def test_attaching_before_the_worker_records_the_start_takes_the_jobs_name(
    project: Project,
) -> None:
    store = project.open_store()
    jobs = Jobs(store)
    job = jobs.submit(["python", "x.py"], str(project.root), name="early", tags=["t"])
    run_dir = project.run_dir(job.run_id)
    run_dir.mkdir(parents=True)
    env = {"WHIRR_JOB_ID": str(job.id), "WHIRR_RUN_ID": job.run_id, "WHIRR_RUN_DIR": str(run_dir)}
    result = run_child(
        script("""
        run = whirr.init(system_metrics=False, capture_pip=False)
        print(run.name, run.tags)
        run.finish()
    """),
        project.root,
        env,
    )
    store.close()
    assert result.stdout.strip() == "early ['t']"
