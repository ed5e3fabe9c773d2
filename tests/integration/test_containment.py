"""No process outlives its job (issue 17 item 3), with real `whirr worker` processes, in
both containments: a cgroup v2 per job (a cgroup2 hierarchy the tests mount) and the
process group + marker + subreaper fallback. Each job writes its marker
(``WHIRR_JOB_TOKEN``) first; afterwards no process carrying it may remain."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys

from containment_env import (  # noqa: F401 - fixtures
    PRINTS_LIMITS,
    assert_limits_printed,
    cgroup2_mount_fixture,
    cgroup_dir_fixture,
    containment_fixture,
    limits_env,
    marked,
    none_left,
    read_token,
)
from server_process import wait_for

from whirr.project import Project
from whirr.services import Jobs

WORKER = [sys.executable, "-m", "whirr.cli.main", "worker"]


def start_worker(
    project: Project, env: dict[str, str], *args: str, session: bool = False
) -> subprocess.Popen[bytes]:
    log = open(project.root / "worker.log", "ab")  # noqa: SIM115 - the worker's
    with log:
        return subprocess.Popen(
            [*WORKER, *args],
            cwd=project.root,
            env={**os.environ, **env},
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=session,
        )


def log_of(project: Project) -> str:
    return (project.root / "worker.log").read_text()


def submit(project: Project, store, script: str, **options) -> int:
    tok = project.root / "token"
    line = f'echo "$WHIRR_JOB_TOKEN" > {tok}; {script}'
    return Jobs(store).submit(["bash", "-c", line], str(project.root), **options).id


def test_worker_says_which_containment_holds_its_jobs(
    project: Project, store, containment: dict[str, str]
) -> None:
    worker = start_worker(project, containment, "--exit-when-empty")
    assert worker.wait(timeout=30) == 0
    expected = {"cgroup": "Containment: cgroup v2 in ", "pgroup": "Containment: process group"}
    assert expected[containment["WHIRR_CONTAINMENT"]] in log_of(project)


def test_background_child_dies_when_the_job_exits(
    project: Project, store, containment: dict[str, str]
) -> None:
    job = submit(project, store, "sleep 304 & exit 0")
    worker = start_worker(project, containment, "--exit-when-empty")
    assert worker.wait(timeout=30) == 0, log_of(project)
    token = read_token(project.root / "token")
    assert Jobs(store).get(job).status == "completed"
    none_left(token)


def test_setsid_child_dies_when_the_job_exits(
    project: Project, store, containment: dict[str, str]
) -> None:
    job = submit(project, store, "setsid sleep 305 & setsid -f sleep 306; exit 0")
    worker = start_worker(project, containment, "--exit-when-empty")
    assert worker.wait(timeout=30) == 0, log_of(project)
    token = read_token(project.root / "token")
    assert Jobs(store).get(job).status == "completed"
    none_left(token)


def test_term_ignoring_child_dies_on_cancel(
    project: Project, store, containment: dict[str, str]
) -> None:
    ready = project.root / "ready"
    job = submit(
        project, store, f'(trap "" TERM; touch {ready}; exec sleep 303) & setsid sleep 307 & wait'
    )
    worker = start_worker(project, containment, "--exit-when-empty")
    token = read_token(project.root / "token")
    wait_for(lambda: ready.exists() and len(marked(token)) >= 3)
    Jobs(store).cancel(job)
    assert worker.wait(timeout=30) == 0, log_of(project)
    assert Jobs(store).get(job).status == "cancelled"
    none_left(token)


def test_term_ignoring_child_dies_on_timeout(
    project: Project, store, containment: dict[str, str]
) -> None:
    job = submit(
        project,
        store,
        '(trap "" TERM; exec sleep 303) & setsid sleep 308 & wait',
        timeout_seconds=1,
    )
    worker = start_worker(project, containment, "--exit-when-empty")
    assert worker.wait(timeout=30) == 0, log_of(project)
    token = read_token(project.root / "token")
    assert Jobs(store).get(job).status == "timed_out"
    none_left(token)


def test_sighup_to_the_worker_process_group_leaves_no_job_process(
    project: Project, store, containment: dict[str, str]
) -> None:
    """`setsid whirr worker & kill -HUP -- -$!` (a dropped SSH session): the reaper has a
    session of its own, survives, and ends the job's processes, setsid'd ones too."""
    submit(project, store, "sleep 311 & setsid sleep 312 & wait")
    worker = start_worker(project, containment, session=True)
    token = read_token(project.root / "token")
    wait_for(lambda: len(marked(token)) >= 3)
    os.killpg(worker.pid, signal.SIGHUP)
    assert worker.wait(timeout=10) == -signal.SIGHUP
    none_left(token)


def test_sigkill_of_the_worker_process_group_leaves_no_job_process(
    project: Project, store, containment: dict[str, str]
) -> None:
    submit(project, store, "sleep 313 & setsid sleep 314 & wait")
    worker = start_worker(project, containment, session=True)
    token = read_token(project.root / "token")
    wait_for(lambda: len(marked(token)) >= 3)
    os.killpg(worker.pid, signal.SIGKILL)
    worker.wait(timeout=10)
    none_left(token)


def test_cgroup_containment_refused_clearly_where_it_cannot_be_had(
    project: Project, tmp_path
) -> None:
    env = {"WHIRR_CONTAINMENT": "cgroup", "WHIRR_CGROUP_DIR": str(tmp_path)}
    worker = start_worker(project, env, "--exit-when-empty")
    assert worker.wait(timeout=30) == 1
    out = log_of(project)
    assert "Error: cannot contain jobs in a cgroup v2: " in out and "Traceback" not in out
    assert "is not a cgroup v2 directory" in out


def doctor_containment(project: Project, env: dict[str, str]) -> dict[str, object]:
    done = subprocess.run(
        [sys.executable, "-m", "whirr.cli.main", "doctor", "--json"],
        cwd=project.root,
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=60,
    )
    return next(c for c in json.loads(done.stdout) if c["name"] == "containment")


def test_doctor_says_which_containment_a_local_worker_would_use(
    project: Project, containment: dict[str, str]
) -> None:
    check = doctor_containment(project, containment)
    assert check["ok"] is True
    if containment["WHIRR_CONTAINMENT"] == "cgroup":
        assert str(check["detail"]).startswith(f"cgroup v2 in {containment['WHIRR_CGROUP_DIR']} (")
        assert "kill, cpu time" in str(check["detail"])
    else:
        assert str(check["detail"]).startswith("process group + subreaper")
        assert "--memory/--cpus not enforced" in str(check["detail"])


def test_doctor_flags_a_cgroup_containment_that_cannot_be_had(project: Project, tmp_path) -> None:
    env = {"WHIRR_CONTAINMENT": "cgroup", "WHIRR_CGROUP_DIR": str(tmp_path)}
    check = doctor_containment(project, env)
    assert check["ok"] is False and "is not a cgroup v2 directory" in str(check["detail"])


def test_submit_memory_and_cpus_reach_the_job_or_its_log_says_why_not(
    project: Project, containment: dict[str, str]
) -> None:
    """`submit --memory 16G --cpus 4`: the job's cgroup gets memory.max/cpu.max where the
    controllers are enabled; elsewhere it runs unlimited and its log's first line says so."""
    cli = [sys.executable, "-m", "whirr.cli.main", "submit", "--json"]
    done = subprocess.run(
        [*cli, "--memory", "16G", "--cpus", "4", "--", "bash", "-c", PRINTS_LIMITS],
        cwd=project.root,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    job = json.loads(done.stdout)
    assert (job["memory_bytes"], job["cpus"]) == (16 * 2**30, 4.0)
    worker = start_worker(project, limits_env(containment), "--exit-when-empty")
    assert worker.wait(timeout=30) == 0, log_of(project)
    log = (project.run_dir(job["run_id"]) / "output.log").read_text().splitlines()
    assert_limits_printed(log, containment)


def test_submit_refuses_bad_limits_in_one_line(project: Project) -> None:
    for option, value in (("--memory", "12Q"), ("--memory", "1K"), ("--cpus", "0")):
        done = subprocess.run(
            [sys.executable, "-m", "whirr.cli.main", "submit", option, value, "--", "true"],
            cwd=project.root,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert done.returncode == 2 and f"Invalid value for '{option}'" in done.stderr
        assert "Traceback" not in done.stderr
