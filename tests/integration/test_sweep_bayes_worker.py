"""method: bayes and early_terminate through the real CLI and a real local worker: a
script that logs a noisy quadratic per step with ``whirr.init``/``run.log`` is swept;
each end proposes the next point, the median pruner cancels clearly bad runs (ended
``cancelled``, error ``pruned``, shown by ``whirr status`` and ``whirr show``)."""

from __future__ import annotations

import json
import shlex
import subprocess
import sys
from pathlib import Path
from typing import Any

from cli_runner import WHIRR, run_cli

from whirr.project import Project

OBJECTIVE = """\
import argparse, random, time
import whirr
parser = argparse.ArgumentParser()
parser.add_argument("--x", type=float)
parser.add_argument("--y", type=float)
parser.add_argument("--kind")
parser.add_argument("--steps", type=int)
args = parser.parse_args()
run = whirr.init()
loss = (args.x - 0.7) ** 2 + (args.y + 0.3) ** 2 + {"a": 0.0, "b": 0.5, "c": 2.0}[args.kind]
noise = random.Random(f"{args.x}/{args.y}/{args.kind}")
for step in range(args.steps):
    # Every run's curve has the same shape: the pruner compares like with like.
    run.log({"loss": loss * (1 + 2 / (step + 1)) + noise.uniform(0, 0.01)}, step=step)
    time.sleep(0.15)
run.finish()
"""

SWEEP = """\
name: bowl
program: {python} objective.py --steps 8
method: bayes
max_runs: 8
max_concurrent: 2
seed: 3
metric: {{name: loss, goal: minimize}}
early_terminate: {{type: median, min_iter: 1, min_trials: 2}}
parameters:
  x: {{distribution: uniform, min: -3, max: 3}}
  y: {{distribution: uniform, min: -3, max: 3}}
  kind: {{distribution: categorical, values: [a, b, c]}}
"""


def final_loss(config: dict[str, Any]) -> float:
    shift = {"a": 0.0, "b": 0.5, "c": 2.0}[config["kind"]]
    return (config["x"] - 0.7) ** 2 + (config["y"] + 0.3) ** 2 + shift


def cli_json(root: Path, *args: str) -> Any:
    return json.loads(run_cli(*args, "--json", cwd=root, check=True).stdout)


def test_a_bayes_sweep_runs_on_a_worker_and_prunes_bad_runs(project: Project) -> None:
    root = project.root
    # Heartbeats every 0.2 s (each asks the pruner); a lease long enough that a slow
    # first Optuna import never fences a job.
    project.config_path.write_text(
        "heartbeat_interval: 0.2\nheartbeat_timeout: 20\nkill_grace_period: 1\npoll_interval: 1\n"
    )
    (root / "objective.py").write_text(OBJECTIVE)
    (root / "sweep.yaml").write_text(SWEEP.format(python=shlex.quote(sys.executable)))

    dry = run_cli("sweep", "sweep.yaml", "-n", cwd=root, check=True).stdout
    assert "Dry run: 2 job(s) of sweep bowl (bayes, seed 3); nothing queued." in dry
    assert "Then each job that ends proposes the next point (TPE), up to 8 jobs" in dry

    queued = run_cli("sweep", "sweep.yaml", cwd=root, check=True).stdout
    assert queued.startswith("Sweep bowl: queued 2 job(s) #1-#2 (bayes, seed 3)\n"), queued
    worker = subprocess.run(
        [*WHIRR, "worker", "--slots", "2", "--exit-when-empty"],
        cwd=root,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert worker.returncode == 0, worker.stderr
    assert "fenced" not in worker.stderr

    sweeps = cli_json(root, "sweeps")["sweeps"]
    assert [(s["name"], s["state"]) for s in sweeps] == [("bowl", "finished")]
    jobs = cli_json(root, "status", "-a")["jobs"]
    assert len(jobs) == 8
    assert {j["status"] for j in jobs} <= {"completed", "cancelled"}, jobs
    completed = [j for j in jobs if j["status"] == "completed"]
    pruned = [j for j in jobs if j["status"] == "cancelled"]
    assert len(completed) >= 2 and pruned, [(j["status"], j["config"]) for j in jobs]
    best = min(final_loss(j["config"]) for j in completed)
    for job in pruned:
        assert job["error"] == "pruned"
        # Clearly bad: worse than the best completed run, and stopped before its end.
        assert final_loss(job["config"]) > best
        rows = (root / ".whirr" / "runs" / job["run_id"] / "metrics.jsonl").read_text()
        assert 1 <= len(rows.splitlines()) < 8
    text = run_cli("status", "-a", cwd=root, check=True).stdout
    assert "pruned" in text
    shown = run_cli("show", str(pruned[0]["id"]), cwd=root, check=True).stdout
    assert "Error:    pruned" in shown


def test_without_optuna_a_bayes_sweep_says_what_to_install(
    project: Project, tmp_path: Path
) -> None:
    root = project.root
    (root / "objective.py").write_text(OBJECTIVE)
    (root / "sweep.yaml").write_text(SWEEP.format(python="python"))
    # An optuna that cannot be imported, first on the path.
    blocked = tmp_path / "blocked"
    blocked.mkdir()
    (blocked / "optuna.py").write_text(
        "raise ModuleNotFoundError(\"No module named 'optuna'\", name='optuna')\n"
    )
    result = run_cli("sweep", "sweep.yaml", cwd=root, env={"PYTHONPATH": str(blocked)})
    assert result.returncode == 1
    assert result.stderr.strip() == (
        "Error: whirr sweep needs optuna, which is not installed: pip install 'whirr[sweeps]'"
    )
    assert cli_json(root, "sweeps")["sweeps"] == []
