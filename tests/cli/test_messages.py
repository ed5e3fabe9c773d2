"""Messages that used to mislead (issue 21), through the real CLI on real projects: a
dependency's condition and its own status, why a worker with a job still queued stopped,
why a batch of jobs failed, an export format whirr does not write, a metric no sweep run
reported, a dirty checkout without diff.patch, and a comparison of many runs that fits
the terminal."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import pytest
from cli_runner import run_cli

from whirr.project import Project, init_project

CPU_ONLY = {"WHIRR_FAKE_GPUS": "0"}

FAILING = "import sys; [print('line', i) for i in range(30)]; sys.exit({code})"

# `python` on PATH may not have whirr: the job appends to its run's metrics file itself.
TRAIN = """\
import json, os, sys
with open(os.path.join(os.environ["WHIRR_RUN_DIR"], "metrics.jsonl"), "a") as out:
    out.write(json.dumps({"_idx": 0, "step": 1, "loss": float(sys.argv[2]), "lr": 1}) + "\\n")
"""

SWEEP = """\
name: sw
program: python train.py
parameters:
  lr: [0.1, 0.2]
"""


def cli(project: Project, *args: str, env: dict[str, str] | None = None) -> str:
    return run_cli(*args, cwd=project.root, env={**CPU_ONLY, **(env or {})}, check=True).stdout


def submit(project: Project, *args: str) -> int:
    return int(json.loads(cli(project, "submit", "--json", *args))["id"])


@pytest.fixture(scope="module")
def batch(tmp_path_factory: pytest.TempPathFactory) -> tuple[Project, str]:
    """A project whose CPU-only worker (``--exit-when-empty``) ran: job 1 timed out,
    job 2 waited on it, jobs 3 and 4 failed (exit 3 and 4, 30 lines each), job 5 wants
    a GPU, and sweep ``sw`` (jobs 6 and 7) logged loss. Returns the worker's output."""
    project, _ = init_project(tmp_path_factory.mktemp("messages") / "proj")
    project.config_path.write_text(
        "heartbeat_interval: 0.2\nheartbeat_timeout: 1.5\nkill_grace_period: 1\n"
        "poll_interval: 1\nmax_attempts: 3\n"
    )
    py = sys.executable
    assert submit(project, "--timeout", "1s", py, "-c", "import time; time.sleep(60)") == 1
    assert submit(project, "--after", "1", py, "-c", "pass") == 2
    assert submit(project, "-n", "three", py, "-c", FAILING.format(code=3)) == 3
    assert submit(project, py, "-c", FAILING.format(code=4)) == 4
    assert submit(project, "--gpus", "1", py, "-c", "pass") == 5
    (project.root / "train.py").write_text(TRAIN)
    (project.root / "sweep.yaml").write_text(SWEEP)
    cli(project, "sweep", "sweep.yaml")
    worker = run_cli(
        "worker", "--exit-when-empty", cwd=project.root, env=CPU_ONLY, check=True, timeout=120
    )
    return project, worker.stdout + worker.stderr


def test_status_of_a_dependent_job_shows_the_condition_and_the_dependency_status(
    batch: tuple[Project, str],
) -> None:
    project, _ = batch
    after = [line for line in cli(project, "status", "2").splitlines() if line.startswith("After")]
    assert after == ["After:     #1 (timed_out): runs once each has completed"]


def test_cpu_worker_says_which_queued_job_it_cannot_run_and_why(
    batch: tuple[Project, str],
) -> None:
    _, output = batch
    assert "queue empty" not in output
    assert (
        "1 queued job(s) need more than this worker offers (no GPUs and 1 CPU slot(s)): "
        "#5 (needs 1 GPU)." in output
    )
    assert "drained (nothing queued it can run)." in output


def test_status_of_failed_jobs_has_exit_code_and_error_columns(
    batch: tuple[Project, str],
) -> None:
    project, _ = batch
    lines = cli(project, "status", "-s", "failed").splitlines()
    header = lines[0].split()
    assert header[:8] == ["ID", "NAME", "STATUS", "TRY", "WORKER", "TIME", "EXIT", "ERROR"]
    rows = {line.split()[0]: line for line in lines[1:3]}
    assert sorted(rows) == ["3", "4"]
    exit_at = lines[0].index("EXIT")
    assert rows["3"][exit_at:].split()[0] == "3" and rows["4"][exit_at:].split()[0] == "4"
    jobs = json.loads(cli(project, "status", "-s", "failed", "--json"))["jobs"]
    assert sorted((j["id"], j["exit_code"]) for j in jobs) == [(3, 3), (4, 4)]
    assert all("error" in j for j in jobs)


def test_logs_failed_prints_each_failed_job_header_and_last_lines(
    batch: tuple[Project, str],
) -> None:
    project, _ = batch
    out = cli(project, "logs", "--failed", "-n", "2").splitlines()
    assert out[0].startswith("==> job #3 (three): failed, exit 3") and out[0].endswith("<==")
    assert out[1:3] == ["line 28", "line 29"]
    assert out[3] == ""
    assert out[4].startswith("==> job #4: failed, exit 4")
    assert out[5:] == ["line 28", "line 29"]
    default = cli(project, "logs", "--failed").splitlines()
    assert default.count("line 29") == 2 and default.count("line 10") == 2
    assert "line 9" not in default  # 20 lines each: 10..29
    refused = run_cli("logs", "3", "--failed", cwd=project.root)
    assert refused.returncode == 2 and "--failed takes no JOB_ID" in refused.stderr


def test_sweep_status_lists_the_metrics_that_exist(batch: tuple[Project, str]) -> None:
    project, _ = batch
    out = cli(project, "sweep", "status", "sw", "-m", "accuracy")
    assert "No run has reported accuracy yet (metrics they did report: loss, lr, step)" in out


def test_export_to_an_unknown_format_says_so(project: Project) -> None:
    result = run_cli("export", "out.xlsx", cwd=project.root)
    assert result.returncode == 1
    assert result.stderr.startswith("Error: unknown export format '.xlsx' (out.xlsx)")
    assert ".csv, .json, .jsonl" in result.stderr and "no run matches" not in result.stderr
    assert "Traceback" not in result.stderr


def tracked(project: Project, body: str) -> list[str]:
    """Run a tracked script in the project; the run ids it prints."""
    code = "import whirr\n" + textwrap.dedent(body)
    result = subprocess.run(
        [sys.executable, "-c", code],
        cwd=project.root,
        capture_output=True,
        text=True,
        timeout=60,
        env=dict(os.environ),
    )
    assert result.returncode == 0, result.stderr
    return result.stdout.split()


def git(project: Project, *args: str) -> None:
    subprocess.run(
        ["git", "-c", "user.name=t", "-c", "user.email=t@t", *args],
        cwd=project.root,
        check=True,
        capture_output=True,
    )


ONE_RUN = """
run = whirr.init(system_metrics=False, capture_pip=False)
run.finish()
print(run.run_id)
"""


def test_show_points_at_diff_patch_only_when_one_was_written(project: Project) -> None:
    git(project, "init", "-q")
    (project.root / "code.py").write_text("a = 1\n")
    git(project, "add", "code.py")
    git(project, "commit", "-q", "-m", "code")
    (project.root / "notes.txt").write_text("untracked\n")
    (untracked,) = tracked(project, ONE_RUN)
    (project.root / "code.py").write_text("a = 2\n")
    (changed,) = tracked(project, ONE_RUN)

    shown = cli(project, "show", untracked)
    assert "see diff.patch" not in shown
    assert "dirty, but no diff.patch was saved: a diff leaves out untracked files" in shown
    shown = cli(project, "show", changed)
    assert "(dirty: see diff.patch)" in shown


EIGHT_RUNS = """
for i in range(8):
    run = whirr.init(name=f"grid-{i}", tags=["grid"], system_metrics=False,
                     capture_git=False, capture_pip=False,
                     config={"learning_rate": 0.001 * (i + 1), "optimizer": "adamw",
                             "warmup_steps": 100 * i, "dataset": "imagenet-1k"})
    run.log({"val/accuracy": 0.5 + i / 100, "train/loss": 1 / (i + 1)}, step=1)
    run.finish()
    print(run.run_id)
other = whirr.init(name="other", system_metrics=False, capture_git=False, capture_pip=False)
other.finish()
print(other.run_id)
"""


def test_compare_of_eight_runs_by_tag_fits_the_terminal(project: Project) -> None:
    *grid, other = tracked(project, EIGHT_RUNS)
    out = cli(project, "compare", "-t", "grid", env={"COLUMNS": "80"})
    lines = out.splitlines()
    assert max(len(line) for line in lines) <= 80, out
    for run_id in grid:
        assert run_id in out
    assert other not in out
    # Each block repeats the field names; together they cover every run's value.
    assert sum(line.startswith("config.learning_rate") for line in lines) >= 2
    assert out.index(grid[0]) < out.index(grid[-1])  # oldest first
    # Piped without COLUMNS, lines stay whole (for grep and files).
    whole = run_cli("compare", *grid, cwd=project.root, env={"COLUMNS": ""}, check=True)
    assert any(len(line) > 80 for line in whole.stdout.splitlines())
    assert sum(line.startswith("config.learning_rate") for line in whole.stdout.splitlines()) == 1
    unknown = run_cli("compare", "-t", "nope", cwd=project.root)
    assert unknown.returncode == 1 and unknown.stderr.startswith("Error: no run has tag 'nope'")
