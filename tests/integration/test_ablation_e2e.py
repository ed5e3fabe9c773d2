"""An ablation study end to end: the real CLI, real workers and a toy experiment whose
effects are known (examples/ablate_toy.py). The ranking must put them in order, and each
95% interval must cover the true effect (fixed seeds make this deterministic)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from cli_runner import WHIRR, run_cli

from whirr.project import Project

TOY = Path(__file__).resolve().parents[2] / "examples" / "ablate_toy.py"
TRUE_EFFECTS = {"augment": 2.0, "narrow": -0.5, "dropout": 0.0}


def test_ablation_ranks_known_effects_with_intervals_covering_the_truth(
    project: Project,
) -> None:
    root = project.root
    (root / "note.txt").write_text("baseline notes\n")
    for args in (
        ["init", "toy", "-m", "score", "-r", "8", "--seed-base", "100"],
        ["baseline", "toy", "augment=false", "width=64", "dropout=0.1", "notes=@note.txt"],
        ["add", "toy", "augment=true", "-n", "augment"],
        ["add", "toy", "width=32", "-n", "narrow"],
        ["add", "toy", "dropout=0.3", "-n", "dropout"],
    ):
        run_cli("ablate", *args, cwd=root, check=True)

    queued = run_cli(
        "ablate",
        "run",
        "toy",
        "--",
        sys.executable,
        str(TOY),
        "--seed",
        "{{seed}}",
        "--cfg",
        "{{cfg_path}}",
        cwd=root,
        check=True,
    )
    assert "Study toy: queued 32 job(s) #1-#32" in queued.stdout
    job = json.loads(run_cli("status", "2", "--json", cwd=root, check=True).stdout)
    cfg = root / ".whirr" / "ablations" / "toy" / "configs" / "augment-0.json"
    assert job["command_argv"] == [sys.executable, str(TOY), "--seed", "100", "--cfg", str(cfg)]
    assert json.loads(cfg.read_text())["notes"] == "baseline notes\n"

    # Two workers drain the queue together (the machine has two cores).
    workers = [
        subprocess.Popen([*WHIRR, "worker", "--exit-when-empty", "-q"], cwd=root) for _ in range(2)
    ]
    assert [w.wait(timeout=240) for w in workers] == [0, 0]

    ranking = json.loads(run_cli("ablate", "rank", "toy", "--json", cwd=root, check=True).stdout)
    assert (ranking["pending"], ranking["failed"], ranking["no_metric"]) == (0, 0, 0)
    assert [e["delta"] for e in ranking["effects"]] == ["augment", "narrow", "dropout"]
    for effect in ranking["effects"]:
        truth = TRUE_EFFECTS[effect["delta"]]
        assert effect["n"] == 8
        assert effect["ci_low"] <= truth <= effect["ci_high"], effect
        assert effect["effect"] == sum(p["delta"] - p["baseline"] for p in effect["pairs"]) / 8
    augment, narrow, dropout = ranking["effects"]
    assert augment["excludes_zero"] and narrow["excludes_zero"]
    assert not dropout["excludes_zero"]
    assert (augment["agree"], narrow["agree"]) == (8, 8)

    text = run_cli("ablate", "rank", "toy", cwd=root, check=True).stdout
    assert "Strongest effect: augment (+2.07" in text
    assert text.index("augment") < text.index("narrow") < text.index("dropout")

    # Everything ran: running again has nothing left to do.
    again = run_cli(
        "ablate",
        "run",
        "toy",
        "--",
        sys.executable,
        str(TOY),
        "--seed",
        "{{seed}}",
        "--cfg",
        "{{cfg_path}}",
        cwd=root,
        check=True,
    )
    assert "every cell is already queued or done" in again.stdout


def test_ablate_errors_are_messages_not_tracebacks(project: Project) -> None:
    root = project.root
    missing = run_cli("ablate", "add", "nope", "x=1", cwd=root)
    assert missing.returncode == 1
    assert missing.stderr.startswith("Error: no ablation study named 'nope'")
    run_cli("ablate", "init", "s", "-m", "acc", cwd=root, check=True)
    bad = run_cli("ablate", "add", "s", "lr", cwd=root)
    assert (bad.returncode, bad.stderr.strip()) == (1, "Error: expected key=value, got 'lr'")
    no_deltas = run_cli("ablate", "run", "s", "--", "true", cwd=root)
    assert no_deltas.returncode == 1 and "has no deltas yet" in no_deltas.stderr
    run_cli("ablate", "add", "s", "lr=1e-3", cwd=root, check=True)
    dry = run_cli(
        "ablate", "run", "s", "-n", "-r", "1", "--", "echo", "{{seed}}", cwd=root, check=True
    )
    assert "Dry run: 2 job(s) of study s; nothing queued." in dry.stdout
    assert "Traceback" not in missing.stderr + bad.stderr + no_deltas.stderr
