"""Fail fast and --check through the real CLI and a real worker: a sweep whose key
``batch_size`` becomes ``--batch_size`` while the script takes ``--batch-size``."""

from __future__ import annotations

import json
import signal
import subprocess
import time
from pathlib import Path
from typing import Any

from cli_runner import WHIRR, run_cli

from whirr.project import Project

TRAIN = """\
import argparse, json, os
parser = argparse.ArgumentParser()
parser.add_argument("--lr", type=float)
parser.add_argument("--batch-size", type=int)
args = parser.parse_args()
with open(os.path.join(os.environ["WHIRR_RUN_DIR"], "metrics.jsonl"), "a") as out:
    out.write(json.dumps({"_idx": 0, "loss": args.lr * args.batch_size}) + "\\n")
"""

SWEEP = """\
name: bs
program: python train.py
parameters:
  lr: [0.1, 0.01]
  batch_size: [16, 32, 64, 128]
"""


def sweep_json(root: Path, *args: str) -> Any:
    return json.loads(run_cli(*args, "--json", cwd=root, check=True).stdout)


def wait_for(predicate: Any, what: str, timeout: float = 60) -> Any:
    """Poll ``predicate`` until it returns something true, at most ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = predicate()
        if found:
            return found
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


def test_check_names_the_flag_the_program_does_not_take(project: Project) -> None:
    root = project.root
    (root / "train.py").write_text(TRAIN)
    (root / "sweep.yaml").write_text(SWEEP)
    checked = run_cli("sweep", "sweep.yaml", "-n", "--check", cwd=root)
    assert checked.returncode == 1, checked.stderr
    assert (
        "Warning: --batch_size is not an option `python train.py --help` lists "
        "(did you mean --batch-size?)" in checked.stderr
    )
    assert checked.stderr.strip().splitlines()[-1] == (
        "Error: 1 of the 2 flag(s) the sweep passes are not listed by "
        "`python train.py --help`: --batch_size"
    )
    assert "Traceback" not in checked.stderr
    # Without -n, --check refuses to queue the sweep.
    refused = run_cli("sweep", "sweep.yaml", "--check", cwd=root)
    assert refused.returncode == 1
    assert sweep_json(root, "sweeps")["sweeps"] == []

    (root / "sweep.yaml").write_text(SWEEP.replace("batch_size:", "batch-size:"))
    fixed = run_cli("sweep", "sweep.yaml", "-n", "--check", cwd=root, check=True)
    assert "Check: `python train.py --help` lists every flag the sweep passes" in fixed.stdout
    assert "Dry run: 8 job(s) of sweep bs (grid); nothing queued." in fixed.stdout

    (root / "plain.py").write_text("import sys\nsys.exit(3)\n")
    (root / "sweep.yaml").write_text(SWEEP.replace("train.py", "plain.py"))
    plain = run_cli("sweep", "sweep.yaml", "-n", "--check", cwd=root)
    assert plain.returncode == 1
    assert plain.stderr.strip() == (
        "Error: cannot check the sweep's flags: ran `python plain.py --help`; "
        "it exited 3 (no --help?)"
    )


def test_a_sweep_that_fails_the_same_way_pauses_and_resumes(project: Project) -> None:
    root = project.root
    (root / "train.py").write_text(TRAIN)
    (root / "sweep.yaml").write_text(SWEEP)
    run_cli("sweep", "sweep.yaml", cwd=root, check=True)

    log = root / "worker.log"
    with open(log, "wb") as out:
        worker = subprocess.Popen(
            [*WHIRR, "worker"], cwd=root, stdout=out, stderr=subprocess.STDOUT
        )
    try:
        paused = wait_for(
            lambda: (s := sweep_json(root, "sweeps")["sweeps"][0])["state"] == "paused" and s,
            "the sweep to pause",
        )
        # The worker says why, on the end that paused it.
        wait_for(lambda: "Sweep bs paused (fail-fast)" in log.read_text(), "the worker's line")
    finally:
        worker.send_signal(signal.SIGINT)
        worker.wait(timeout=60)
    output = log.read_text()
    assert (
        "Sweep bs paused (fail-fast): its first 3 jobs to end (#1, #2, #3) all failed with "
        "exit code 2 and logged no metric; its queued jobs are held until "
        "`whirr sweep resume bs`." in output
    ), output

    progress = paused["progress"]
    # The first three failed; a job the worker had claimed before the pause may have run.
    assert progress["done"] == 0 and 3 <= progress["failed"] <= 4, progress
    assert progress["queued"] == 8 - progress["failed"]
    report = sweep_json(root, "sweep", "status", "bs")
    assert report["sweep"]["paused_after"] == [1, 2, 3]
    text = run_cli("sweep", "status", "bs", cwd=root, check=True).stdout
    assert (
        "Paused (fail-fast): its first 3 jobs to end (#1, #2, #3) all failed with exit code 2 "
        "and logged no metric; its queued jobs are held: fix the cause, then "
        "`whirr sweep resume bs`" in text
    )
    status = run_cli("status", cwd=root, check=True).stdout
    assert (
        "queued (held: sweep bs paused: #1, #2, #3 failed with exit 2, no metric; "
        "`whirr sweep resume bs`)" in status
    ), status
    listed = run_cli("sweeps", cwd=root, check=True).stdout
    assert " paused " in listed

    # Fix the script, resume: the held jobs run and complete.
    (root / "train.py").write_text(TRAIN.replace("--batch-size", "--batch_size"))
    resumed = run_cli("sweep", "resume", "bs", cwd=root, check=True).stdout
    assert resumed.strip() == f"Sweep bs: released {progress['queued']} held job(s)"
    run_cli("worker", "--exit-when-empty", "-q", cwd=root, check=True, timeout=120)
    done = sweep_json(root, "sweeps")["sweeps"][0]
    assert done["state"] == "finished"
    assert done["progress"]["done"] == progress["queued"]


def test_no_fail_fast_runs_every_job(project: Project) -> None:
    root = project.root
    (root / "train.py").write_text(TRAIN)
    (root / "sweep.yaml").write_text(SWEEP.replace("lr: [0.1, 0.01]", "lr: [0.1]"))
    run_cli("sweep", "sweep.yaml", "--no-fail-fast", cwd=root, check=True)
    run_cli("worker", "--exit-when-empty", "-q", cwd=root, check=True, timeout=120)
    listed = sweep_json(root, "sweeps")["sweeps"][0]
    assert (listed["state"], listed["progress"]["failed"]) == ("finished", 4)
    report = sweep_json(root, "sweep", "status", "bs")
    assert (report["sweep"]["fail_fast"], report["sweep"]["fail_fast_state"]) == (0, "off")
    both = run_cli("sweep", "sweep.yaml", "-p", "x", "--fail-fast", "2", "--no-fail-fast", cwd=root)
    assert both.returncode == 2 and "give --fail-fast N or --no-fail-fast, not both" in both.stderr
