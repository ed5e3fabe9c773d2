"""method: bayes and early_terminate on a server (SQLite and PostgreSQL): a real remote
worker runs the jobs; the server proposes each next point with the end it records and
asks the pruner on the worker's heartbeats (the run files are in its shared data dir)."""

from __future__ import annotations

import json
import shlex
import sys
from pathlib import Path
from typing import Any

from server_process import ServerProcess, run_cli, start_remote_worker, worker_output

OBJECTIVE = """\
import argparse, time
import whirr
parser = argparse.ArgumentParser()
parser.add_argument("--x", type=float)
parser.add_argument("--kind")
args = parser.parse_args()
run = whirr.init()
loss = (args.x - 0.7) ** 2 + {"a": 0.0, "b": 4.0}[args.kind]
for step in range(8):
    run.log({"loss": loss * (1 + 2 / (step + 1))}, step=step)
    time.sleep(0.15)
run.finish()
"""

SWEEP = """\
name: bowl
program: {python} objective.py
method: bayes
max_runs: 6
max_concurrent: 2
seed: 1
metric: {{name: loss, goal: minimize}}
early_terminate: {{type: median, min_iter: 1, min_trials: 2}}
parameters:
  x: {{distribution: uniform, min: -3, max: 3}}
  kind: [a, b]
"""


def cli_json(server: ServerProcess, cwd: Path, *args: str) -> Any:
    result = run_cli(*args, "--json", server=server, cwd=cwd)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def test_a_server_proposes_points_and_prunes_runs(server: ServerProcess, tmp_path: Path) -> None:
    work = tmp_path / "work"
    work.mkdir()
    (work / "objective.py").write_text(OBJECTIVE)
    (work / "sweep.yaml").write_text(SWEEP.format(python=shlex.quote(sys.executable)))
    queued = run_cli("sweep", "sweep.yaml", server=server, cwd=work)
    assert queued.returncode == 0, queued.stderr
    assert queued.stdout.startswith("Sweep bowl: queued 2 job(s) #1-#2 (bayes, seed 1)")

    worker = start_remote_worker(
        server, "--slots", "2", "--exit-when-empty", "--heartbeat-interval", "0.2"
    )
    assert worker.wait(timeout=120) == 0, worker_output(server)

    listed = cli_json(server, work, "sweeps")["sweeps"]
    assert [(s["name"], s["state"]) for s in listed] == [("bowl", "finished")]
    jobs = cli_json(server, work, "status", "-a")["jobs"]
    assert len(jobs) == 6, jobs
    statuses = sorted((j["status"], j["error"]) for j in jobs)
    assert {s for s, _ in statuses} <= {"completed", "cancelled"}, statuses
    assert ("cancelled", "pruned") in statuses, statuses
    assert all(error == "pruned" for status, error in statuses if status == "cancelled")
    report = cli_json(server, work, "sweep", "status", "bowl")
    assert [row["index"] for row in report["sweep"]["jobs"]] == list(range(6))
