"""A sweep end to end through the real CLI and a real worker: jobs, progress, best run."""

from __future__ import annotations

import json
from pathlib import Path

from cli_runner import run_cli

from whirr.project import Project

TRAIN = """\
import argparse, json, os, sys
parser = argparse.ArgumentParser()
parser.add_argument("--lr", type=float)
parser.add_argument("--bs", type=int)
parser.add_argument("--amp", choices=["true", "false"])
args = parser.parse_args()
if args.lr > 0.2:
    sys.exit("diverged")
loss = abs(args.lr - 0.01) * 10 + args.bs / 1000
with open(os.path.join(os.environ["WHIRR_RUN_DIR"], "metrics.jsonl"), "a") as out:
    for step, value in enumerate([1.0, loss]):
        out.write(json.dumps({"_idx": step, "step": step, "loss": value}) + "\\n")
"""

SWEEP = """\
name: lr
program: python train.py
metric: loss
parameters:
  lr: [0.5, 0.1, 0.01]
  bs: [32, 64]
  amp: true
"""


def test_sweep_runs_end_to_end_with_progress_and_best_run(project: Project) -> None:
    root = project.root
    (root / "train.py").write_text(TRAIN)
    (root / "sweep.yaml").write_text(SWEEP)

    queued = run_cli("sweep", "sweep.yaml", "--priority", "2", cwd=root, check=True)
    assert "Sweep lr: queued 6 job(s) #1-#6 (grid)" in queued.stdout
    jobs = json.loads(run_cli("status", "--all", "--json", cwd=root, check=True).stdout)["jobs"]
    by_name = {j["name"]: j for j in jobs}
    assert sorted(by_name) == [f"lr-{i}" for i in range(6)]
    assert by_name["lr-3"]["command_argv"] == [
        "python",
        "train.py",
        "--lr",
        "0.1",
        "--bs",
        "64",
        "--amp",
        "true",
    ]
    assert by_name["lr-3"]["config"] == {"lr": 0.1, "bs": 64, "amp": True}
    assert all(j["tags"] == ["sweep:lr"] and j["priority"] == 2 for j in jobs)

    listed = json.loads(run_cli("sweeps", "--json", cwd=root, check=True).stdout)["sweeps"]
    assert [(s["name"], s["state"], s["progress"]["queued"]) for s in listed] == [
        ("lr", "active", 6)
    ]

    run_cli("worker", "--exit-when-empty", "-q", cwd=root, check=True, timeout=120)

    listed = json.loads(run_cli("sweeps", "--json", cwd=root, check=True).stdout)["sweeps"]
    progress = listed[0]["progress"]
    assert (progress["done"], progress["failed"], progress["queued"]) == (4, 2, 0)
    assert listed[0]["state"] == "finished"

    report = json.loads(run_cli("sweep", "status", "lr", "--json", cwd=root, check=True).stdout)
    assert report["best"]["index"] == 4  # lr=0.01, bs=32
    assert report["best"]["value"] == 0.032
    assert [j["status"] for j in report["jobs"]] == ["failed"] * 2 + ["completed"] * 4
    text = run_cli("sweep", "status", "lr", cwd=root, check=True).stdout
    assert "Progress: 6/6 finished - 0 queued, 0 running, 4 done, 2 failed, 0 cancelled" in text
    assert "Best loss (minimize): 0.032 - lr-4 (job #5, run job-5)" in text
    # A named metric and goal override the file's.
    report = json.loads(
        run_cli(
            "sweep", "status", "lr", "-m", "loss", "--max", "--json", cwd=root, check=True
        ).stdout
    )
    assert report["best"]["index"] == 3  # lr=0.1, bs=64: the worst loss


def test_dry_run_queues_nothing_and_random_seed_is_printed(project: Project) -> None:
    root = project.root
    (root / "s.yaml").write_text(
        "program: python train.py\nmethod: random\nmax_runs: 3\n"
        "parameters:\n  lr: {distribution: log_uniform, min: 1.0e-4, max: 1.0e-1}\n"
    )
    first = run_cli("sweep", "-n", "s.yaml", "--seed", "5", cwd=root, check=True).stdout
    again = run_cli("sweep", "s.yaml", "--dry-run", "--seed", "5", cwd=root, check=True).stdout
    assert first == again
    assert "Dry run: 3 job(s) of sweep s (random, seed 5); nothing queued." in first
    assert "2  s-2   python train.py --lr 0.0242986" in first
    assert json.loads(run_cli("status", "--all", "--json", cwd=root).stdout)["jobs"] == []


def test_bad_file_gives_a_located_error_and_no_traceback(project: Project) -> None:
    root = project.root
    (root / "bad.yaml").write_text(
        "program: python train.py\nparameters:\n  lr:\n    values: [0.1]\n    step: 2\n"
    )
    result = run_cli("sweep", "bad.yaml", cwd=root)
    assert result.returncode == 1
    assert result.stderr.startswith("Error: bad.yaml, line 5: parameters.lr.step: unknown key")
    assert "Traceback" not in result.stderr
    missing = run_cli("sweep", "nope.yaml", cwd=root)
    assert (missing.returncode, missing.stderr.strip()) == (
        1,
        "Error: cannot read nope.yaml: No such file or directory",
    )
    bad_option = run_cli("sweep", "bad.yaml", "-o", "gpu_count=2", cwd=root)
    assert bad_option.returncode == 1


def test_submit_flags_reach_every_job(project: Project) -> None:
    root = project.root
    (root / "train.py").write_text(TRAIN)
    (root / "sweep.yaml").write_text(SWEEP)
    flags = ["--gpus", "0", "--retries", "2", "--timeout", "1h30m", "-o", "retries=5"]
    run_cli("sweep", "sweep.yaml", *flags, "-o", "after_any=true", cwd=root, check=True)
    jobs = json.loads(run_cli("status", "--all", "--json", cwd=root, check=True).stdout)["jobs"]
    # Named flags win over -o.
    assert {(j["gpus"], j["retries"], j["timeout_seconds"]) for j in jobs} == {(0, 2, 5400)}
    bad = run_cli("sweep", "sweep.yaml", "-p", "x", "--timeout", "soon", cwd=root)
    assert bad.returncode == 2 and "is not a duration" in bad.stderr


def test_rerunning_a_sweep_needs_a_new_name(project: Project, tmp_path: Path) -> None:
    root = project.root
    (root / "train.py").write_text(TRAIN)
    (root / "sweep.yaml").write_text(SWEEP)
    run_cli("sweep", "sweep.yaml", cwd=root, check=True)
    again = run_cli("sweep", "sweep.yaml", cwd=root)
    assert again.returncode == 1 and "a sweep named 'lr' already exists" in again.stderr
    renamed = run_cli("sweep", "sweep.yaml", "-p", "lr-v2", cwd=root, check=True)
    assert "Sweep lr-v2: queued 6 job(s) #7-#12" in renamed.stdout
    cancelled = run_cli("sweep", "cancel", "lr", cwd=root, check=True)
    assert "Sweep lr: cancelled 6 job(s)" in cancelled.stdout
