"""Sweeps and ablation studies on a real server, run by real remote workers, reported
through the API: no local project anywhere (the CLI talks to the server only)."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

from server_process import WHIRR, ServerProcess, run_cli, start_remote_worker, worker_output

from whirr.client import WhirrClient

TOY = Path(__file__).resolve().parents[2] / "examples" / "ablate_toy.py"

# Logs its loss to metrics.jsonl only (no summary): the report must read the metric rows.
TRAIN = """\
import argparse, json, os, sys
parser = argparse.ArgumentParser()
parser.add_argument("--lr", type=float)
parser.add_argument("--bs", type=int)
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
"""


def cli(server: ServerProcess, cwd: Path, *args: str) -> str:
    """The CLI against ``server`` (WHIRR_SERVER_URL set); fails the test on an error."""
    result = run_cli(*args, server=server, cwd=cwd)
    assert result.returncode == 0, result.stderr
    return result.stdout


def cli_json(server: ServerProcess, cwd: Path, *args: str) -> Any:
    return json.loads(cli(server, cwd, *args, "--json"))


def test_sweep_and_ablation_run_on_a_server_and_report_through_it(
    server: ServerProcess, tmp_path: Path
) -> None:
    work = tmp_path / "work"
    work.mkdir()
    (work / "train.py").write_text(TRAIN)
    (work / "sweep.yaml").write_text(SWEEP)

    # -- queue a sweep -----------------------------------------------------------------------
    queued = cli(
        server,
        work,
        "sweep",
        "sweep.yaml",
        *("--priority", "2", "--timeout", "10m", "--gpus", "0", "-o", "max_attempts=2"),
        *("--server", server.url),
    )
    assert "Sweep lr: queued 6 job(s) #1-#6 (grid)" in queued
    with WhirrClient(server.url, token=server.token) as client:
        jobs = {j.name: j for j in client.list_jobs("all", limit=100)}
    assert jobs["lr-3"].command_argv == ["python", "train.py", "--lr", "0.1", "--bs", "64"]
    assert jobs["lr-3"].config == {"lr": 0.1, "bs": 64}
    assert jobs["lr-3"].workdir == str(work)
    assert (jobs["lr-3"].tags, jobs["lr-3"].priority) == (["sweep:lr"], 2)
    lr3 = jobs["lr-3"]
    assert (lr3.timeout_seconds, lr3.gpus, lr3.max_attempts) == (600, 0, 2)
    listed = cli_json(server, work, "sweeps")["sweeps"]
    assert [(s["name"], s["state"], s["progress"]["queued"]) for s in listed] == [
        ("lr", "active", 6)
    ]

    # -- an ablation study with the toy experiment ----------------------------------------
    for args in (
        ["init", "toy", "-m", "score", "-r", "3", "--seed-base", "100"],
        ["baseline", "toy", "augment=false", "width=64", "dropout=0.1"],
        ["add", "toy", "augment=true", "-n", "augment"],
        ["add", "toy", "width=32", "-n", "narrow"],
    ):
        cli(server, work, "ablate", *args)
    command = ["--", sys.executable, str(TOY), "--seed", "{{seed}}", "--cfg", "{{cfg_path}}"]
    dry = cli(server, work, "ablate", "run", "-n", "toy", *command)
    assert "Dry run: 9 job(s) of study toy; nothing queued." in dry
    ran = cli(server, work, "ablate", "run", "toy", "-s", server.url, *command)
    assert "Study toy: queued 9 job(s) #7-#15" in ran
    # Config files live on the data dir the server shares with its workers.
    cfg = server.data_dir / "ablations" / "toy" / "configs" / "narrow-2.json"
    assert json.loads(cfg.read_text())["width"] == 32

    # -- two remote workers drain the queue ------------------------------------------------
    workers = [start_remote_worker(server, "--exit-when-empty", "-q") for _ in range(2)]
    assert [w.wait(timeout=120) for w in workers] == [0, 0], worker_output(server)

    # -- progress and best run, from any machine -------------------------------------------
    listed = cli_json(server, work, "sweeps")["sweeps"]
    progress = listed[0]["progress"]
    assert (listed[0]["state"], progress["done"], progress["failed"]) == ("finished", 4, 2)
    report = cli_json(server, work, "sweep", "status", "lr")
    assert (report["best"]["index"], report["best"]["value"]) == (4, 0.032)
    assert [j["status"] for j in report["jobs"]] == ["failed"] * 2 + ["completed"] * 4
    text = cli(server, work, "sweep", "status", "lr")
    assert "Progress: 6/6 finished - 0 queued, 0 running, 4 done, 2 failed, 0 cancelled" in text
    assert "Best loss (minimize): 0.032 - lr-4 (job #5, run job-5)" in text

    # -- the ranking, from the runs read through the API --------------------------------------
    ranking = cli_json(server, work, "ablate", "rank", "toy")
    assert (ranking["pending"], ranking["failed"], ranking["no_metric"]) == (0, 0, 0)
    assert [e["delta"] for e in ranking["effects"]] == ["augment", "narrow"]
    augment, narrow = ranking["effects"]
    assert (augment["n"], augment["agree"], narrow["agree"]) == (3, 3, 3)
    assert 1.5 < augment["effect"] < 2.5 and -1.0 < narrow["effect"] < 0.0
    # Remote jobs' values reach the server as their metrics files (a run's summary stays
    # in its meta.json): the pairs hold each run's last logged score.
    with WhirrClient(server.url, token=server.token) as client:
        scores = {r.name: client.metrics(r.id)[-1]["score"] for r in client.runs(tag="ablate:toy")}
    assert augment["pairs"][0] == {
        "replicate": 0,
        "baseline": scores["toy-baseline-0"],
        "delta": scores["toy-augment-0"],
    }
    missing = run_cli("sweep", "status", "nope", server=server, cwd=work)
    assert (missing.returncode, missing.stderr.strip()) == (
        1,
        "Error: no sweep named 'nope' (see `whirr sweeps`)",
    )

    # Nothing was written to a local project.
    assert not (work / ".whirr").exists()


# -- one answer, local or remote ------------------------------------------------------------
EVAL = """\
import argparse, json, os
parser = argparse.ArgumentParser()
parser.add_argument("--seed", type=int)
parser.add_argument("--cfg")
args = parser.parse_args()
with open(args.cfg) as fh:
    cfg = json.load(fh)
score = 10 + 2 * cfg["augment"] + (args.seed % 7) / 10 + len(cfg["__ablate__"]["condition"]) / 100
with open(os.path.join(os.environ["WHIRR_RUN_DIR"], "metrics.jsonl"), "a") as out:
    out.write(json.dumps({"_idx": 0, "step": 0, "score": score}) + "\\n")
"""


#: A time as the CLI prints it (``created 2024-05-01 12:00:00``).
LOCAL_TIME = re.compile(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d")


def _normalised(value: Any, paths: dict[str, str]) -> Any:
    """``value`` with each of ``paths`` replaced by its placeholder and every time
    stamp by ``<time>`` (what differs between a project and a server by nature)."""
    if isinstance(value, dict):
        return {
            k: "<time>" if k == "created_at" else _normalised(v, paths) for k, v in value.items()
        }
    if isinstance(value, list):
        return [_normalised(v, paths) for v in value]
    if isinstance(value, str):
        for path, placeholder in paths.items():
            value = value.replace(path, placeholder)
        return LOCAL_TIME.sub("<time>", value)
    return value


def test_sweep_and_ablate_answer_the_same_locally_and_from_a_server(
    server: ServerProcess, tmp_path: Path
) -> None:
    from whirr.project import init_project

    project, _ = init_project(tmp_path / "local")
    remote = tmp_path / "remote"
    remote.mkdir()
    local_env = {k: v for k, v in os.environ.items() if k != "WHIRR_SERVER_URL"}
    homes = {
        "local": {str(project.root / ".whirr"): "<home>", str(project.root): "<work>"},
        "remote": {str(server.data_dir): "<home>", str(remote): "<work>"},
    }

    def both(*args: str) -> tuple[Any, Any]:
        """``whirr ARGS`` in the project and against the server, normalised."""
        answers = []
        for where, cwd in (("local", project.root), ("remote", remote)):
            if where == "local":
                result = subprocess.run(
                    [*WHIRR, *args], cwd=cwd, env=local_env, capture_output=True, text=True
                )
            else:
                result = run_cli(*args, server=server, cwd=cwd)
            assert result.returncode == 0, (where, args, result.stderr)
            out = result.stdout
            answers.append(_normalised(json.loads(out) if "--json" in args else out, homes[where]))
        return answers[0], answers[1]

    sweep = SWEEP.replace("[0.5, 0.1, 0.01]", "[0.5, 0.01]")
    for work in (project.root, remote):
        (work / "train.py").write_text(TRAIN)
        (work / "eval.py").write_text(EVAL)
        (work / "sweep.yaml").write_text(sweep)

    scenario = [
        ("sweep", "sweep.yaml", "--priority", "2", "-o", "retries=0", "--json"),
        ("sweeps", "--json"),
        ("sweep", "status", "lr", "--json"),
        ("ablate", "init", "toy", "-m", "score", "-r", "2", "--seed-base", "5"),
        ("ablate", "baseline", "toy", "augment=0", "width=64"),
        ("ablate", "add", "toy", "augment=1", "-n", "augment"),
        ("ablate", "add", "toy", "width=32", "-n", "narrow"),
        ("ablate", "list", "--json"),
        (
            "ablate",
            "run",
            "-n",
            "toy",
            "--",
            "python",
            "eval.py",
            "--seed",
            "{{seed}}",
            "--cfg",
            "{{cfg_path}}",
        ),
        (
            "ablate",
            "run",
            "toy",
            "--",
            "python",
            "eval.py",
            "--seed",
            "{{seed}}",
            "--cfg",
            "{{cfg_path}}",
        ),
        ("ablate", "rank", "toy", "--json"),
    ]
    for args in scenario:
        local, remote_answer = both(*args)
        assert local == remote_answer, args

    # The same jobs, run by a local worker and by a remote one.
    subprocess.run(
        [*WHIRR, "worker", "--exit-when-empty", "-q"],
        cwd=project.root,
        env=local_env,
        check=True,
        timeout=120,
    )
    assert start_remote_worker(server, "--exit-when-empty", "-q").wait(timeout=120) == 0, (
        worker_output(server)
    )
    for args in [
        ("sweeps", "--json"),
        ("sweep", "status", "lr", "--json"),
        ("sweep", "status", "lr", "-m", "loss", "--max", "--json"),
        ("sweep", "status", "lr"),
        ("ablate", "list", "--json"),
        ("ablate", "rank", "toy", "--json"),
        ("ablate", "rank", "toy", "-v"),
        ("sweep", "cancel", "lr"),
    ]:
        local, remote_answer = both(*args)
        assert local == remote_answer, args
    report, _ = both("sweep", "status", "lr", "--json")
    assert [j["value"] for j in report["jobs"]] == [None, None, 0.032, 0.064]
    ranking, _ = both("ablate", "rank", "toy", "--json")
    assert [(e["delta"], e["n"]) for e in ranking["effects"]] == [("augment", 2), ("narrow", 2)]


# Logs 100,000 rows of loss 1.0, then its real loss in row 100,001.
LONG_TRAIN = """\
import argparse, os
parser = argparse.ArgumentParser()
parser.add_argument("--lr", type=float)
args = parser.parse_args()
rows = [f'{{"_idx": {i}, "step": {i}, "loss": 1.0}}\\n' for i in range(100_000)]
rows.append(f'{{"_idx": 100000, "step": 100000, "loss": {args.lr}}}\\n')
with open(os.path.join(os.environ["WHIRR_RUN_DIR"], "metrics.jsonl"), "w") as out:
    out.write("".join(rows))
"""


def test_a_report_on_a_server_reads_every_metric_row(server: ServerProcess, tmp_path: Path) -> None:
    # Regression: the server's runs were read through one 100,000-row page of
    # `/runs/{id}/metrics`, so a value logged after that was never seen.
    (tmp_path / "train.py").write_text(LONG_TRAIN)
    (tmp_path / "sweep.yaml").write_text(
        "name: long\nprogram: python train.py\nmetric: loss\nparameters:\n  lr: [0.2, 0.1]\n"
    )
    cli(server, tmp_path, "sweep", "sweep.yaml")
    assert start_remote_worker(server, "--exit-when-empty", "-q").wait(timeout=120) == 0, (
        worker_output(server)
    )
    report = cli_json(server, tmp_path, "sweep", "status", "long")
    assert [j["value"] for j in report["jobs"]] == [0.2, 0.1]
    assert (report["best"]["index"], report["best"]["value"]) == (1, 0.1)
