"""whirr.integrations.lightgbm: real LightGBM trainings log every round of every
validation set, LightGBM's params and the final summary, early stopping included."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from whirr.project import Project
from whirr.run import read_meta, read_metrics

PARAMS = {
    "objective": "regression",
    "num_leaves": 4,
    "learning_rate": 0.3,
    "verbose": -1,
    "num_threads": 1,
}


def check_rows(rows: list[dict[str, Any]], record: dict[str, Any], rounds: int) -> None:
    assert [r["step"] for r in rows] == list(range(rounds))
    for i, row in enumerate(rows):
        assert set(row) == {"_idx", "_timestamp", "step", "train/l2", "valid/l2"}
        assert row["train/l2"] == record["train"]["l2"][i]
        assert row["valid/l2"] == record["valid"]["l2"][i]


def test_every_scheduled_round_then_the_summary(
    project: Project, train: Callable[..., dict[str, Any]]
) -> None:
    out = train("train_lightgbm.py", "plain")
    run_dir = project.run_dir(out["run_id"])
    check_rows(read_metrics(run_dir), out["record"], 5)
    meta = read_meta(run_dir) or {}
    # No end(): the summary came at the last scheduled round, the end with the process.
    assert out["status"] == "running" and meta["status"] == "completed"
    assert meta["summary"] == {
        "train/l2": out["record"]["train"]["l2"][-1],
        "valid/l2": out["record"]["valid"]["l2"][-1],
        "rounds": 5,
    }
    config = json.loads((run_dir / "config.json").read_text())
    assert config == {**PARAMS, "num_iterations": 5, "data": "tiny"}


def test_early_stopping_logs_the_round_it_stops_at_and_end_adds_the_best(
    project: Project, train: Callable[..., dict[str, Any]]
) -> None:
    out = train("train_lightgbm.py", "early")
    run_dir = project.run_dir(out["run_id"])
    rounds = len(out["record"]["train"]["l2"])
    assert 1 < rounds < 20, "the validation set was meant to stop training early"
    check_rows(read_metrics(run_dir), out["record"], rounds)
    meta = read_meta(run_dir) or {}
    assert out["status"] == meta["status"] == "completed"
    best = out["best_score"]
    assert meta["summary"] == {
        "train/l2": out["record"]["train"]["l2"][-1],
        "valid/l2": out["record"]["valid"]["l2"][-1],
        "rounds": rounds,
        "best_iteration": out["best_iteration"],
        "best_score/train/l2": best["train"]["l2"],
        "best_score/valid/l2": best["valid"]["l2"],
    }
    assert json.loads((run_dir / "config.json").read_text())["num_iterations"] == 20


def test_cv_logs_means_and_standard_deviations(
    project: Project, train: Callable[..., dict[str, Any]]
) -> None:
    out = train("train_lightgbm.py", "cv")
    run_dir = project.run_dir(out["run_id"])
    rows = read_metrics(run_dir)
    assert [r["step"] for r in rows] == [0, 1, 2]
    for i, row in enumerate(rows):
        assert set(row) == {"_idx", "_timestamp", "step", "valid/l2", "valid/l2/std"}
        assert row["valid/l2"] == out["valid l2-mean"][i]
        assert row["valid/l2/std"] == out["valid l2-stdv"][i]
    meta = read_meta(run_dir) or {}
    assert out["status"] == meta["status"] == "completed"
    assert meta["summary"] == {
        "valid/l2": out["valid l2-mean"][-1],
        "valid/l2/std": out["valid l2-stdv"][-1],
        "rounds": 3,
    }
