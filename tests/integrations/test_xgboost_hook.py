"""whirr.integrations.xgboost: real XGBoost trainings (xgboost-cpu) log every round of
every evaluation set, the booster's parameters and the final summary."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from whirr.project import Project
from whirr.run import read_meta, read_metrics


def test_train_logs_each_round_config_and_best(
    project: Project, train: Callable[..., dict[str, Any]]
) -> None:
    out = train("train_xgboost.py", "train")
    run_dir = project.run_dir(out["run_id"])
    rows = read_metrics(run_dir)
    record = out["record"]
    assert [r["step"] for r in rows] == [0, 1, 2, 3]
    for i, row in enumerate(rows):
        assert set(row) == {"_idx", "_timestamp", "step", "train/rmse", "valid/rmse"}
        assert row["train/rmse"] == record["train"]["rmse"][i]
        assert row["valid/rmse"] == record["valid"]["rmse"][i]
    meta = read_meta(run_dir) or {}
    assert out["status"] == meta["status"] == "completed" and meta["name"] == "xgb-train"
    assert meta["summary"] == {
        "train/rmse": record["train"]["rmse"][-1],
        "valid/rmse": record["valid"]["rmse"][-1],
        "rounds": 4,
        "best_iteration": out["best_iteration"],
        "best_score": out["best_score"],
    }
    config = json.loads((run_dir / "config.json").read_text())
    # The params given win; the rest is the booster's own config, as numbers.
    assert config["eta"] == 0.3 and config["nthread"] == 1 and config["max_depth"] == 2
    assert config["objective"] == "reg:squarederror" and config["booster"] == "gbtree"
    assert config["learning_rate"] == 0.3 and config["lambda"] == 1


def test_cv_logs_means_and_standard_deviations(
    project: Project, train: Callable[..., dict[str, Any]]
) -> None:
    out = train("train_xgboost.py", "cv")
    run_dir = project.run_dir(out["run_id"])
    rows = read_metrics(run_dir)
    record = out["record"]
    assert [r["step"] for r in rows] == [0, 1, 2]
    for i, row in enumerate(rows):
        for data in ("train", "test"):
            assert row[f"{data}/rmse"] == record[f"{data}-rmse-mean"][i]
            assert row[f"{data}/rmse/std"] == record[f"{data}-rmse-std"][i]
    meta = read_meta(run_dir) or {}
    assert meta["status"] == "completed" and meta["summary"]["rounds"] == 3
    assert json.loads((run_dir / "config.json").read_text()) == {
        "objective": "reg:squarederror",
        "max_depth": 2,
        "eta": 0.3,
        "nthread": 1,
    }
