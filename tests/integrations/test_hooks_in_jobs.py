"""Each framework hook inside a job a real local worker runs: ``whirr.init()`` attaches
to the job's run, so the job's run holds the metrics, the config and the summary, under
the job's name, and the worker records its end."""

from __future__ import annotations

from collections.abc import Callable
from importlib.util import find_spec
from pathlib import Path
from typing import Any

import pytest

from whirr.run import read_meta, read_metrics

Job = Callable[..., tuple[dict[str, Any], dict[str, Any]]]


def check_job_run(run: dict[str, Any], name: str) -> Path:
    assert run["id"] == "job-1" and run["job_id"] == 1 and run["name"] == name
    assert run["status"] == "completed"
    return Path(run["run_dir"])


def test_keras_in_a_job(train_in_job: Job) -> None:
    run, out = train_in_job("keras-job", "train_keras.py", "own")
    run_dir = check_job_run(run, "keras-job")
    assert out["run_id"] == "job-1"
    rows = read_metrics(run_dir)
    assert [r["step"] for r in rows] == [0, 1, 2]
    assert [r["val_loss"] for r in rows] == out["history"]["val_loss"]
    assert run["config"]["epochs"] == 3 and run["config"]["units"] == 4
    assert run["summary"]["epochs_trained"] == 3
    assert run["summary"]["loss"] == out["history"]["loss"][-1]
    assert run["tags"] == ["keras"]


def test_xgboost_in_a_job(train_in_job: Job) -> None:
    run, out = train_in_job("xgb-job", "train_xgboost.py", "train")
    run_dir = check_job_run(run, "xgb-job")
    rows = read_metrics(run_dir)
    assert [r["step"] for r in rows] == [0, 1, 2, 3]
    assert [r["valid/rmse"] for r in rows] == out["record"]["valid"]["rmse"]
    assert run["config"]["eta"] == 0.3 and run["config"]["max_depth"] == 2
    assert run["summary"]["best_iteration"] == out["best_iteration"]
    assert run["summary"]["rounds"] == 4


def test_lightgbm_in_a_job(train_in_job: Job) -> None:
    run, out = train_in_job("lgb-job", "train_lightgbm.py", "early")
    run_dir = check_job_run(run, "lgb-job")
    rows = read_metrics(run_dir)
    assert [r["valid/l2"] for r in rows] == out["record"]["valid"]["l2"]
    assert run["config"]["num_leaves"] == 4 and run["config"]["data"] == "tiny"
    assert run["summary"]["best_iteration"] == out["best_iteration"]
    # end() wrote meta.json but no end of its own: the worker recorded the job's end.
    assert (read_meta(run_dir) or {})["status"] == "completed"


TORCH_SKIP = "needs torch (not in CI: PyPI's Linux torch pulls ~2.5 GB of CUDA wheels)"


@pytest.mark.skipif(
    find_spec("torch") is None or find_spec("transformers") is None,
    reason=f"the Hugging Face hook's job test {TORCH_SKIP} and transformers",
)
def test_transformers_in_a_job(train_in_job: Job) -> None:
    run, out = train_in_job("hf-job", "train_transformers.py")
    run_dir = check_job_run(run, "hf-job")
    rows = read_metrics(run_dir)
    assert [r["step"] for r in rows if "loss" in r] == list(range(1, out["global_step"] + 1))
    assert run["config"]["learning_rate"] == 0.01 and run["config"]["model/hidden_size"] == 8
    assert run["summary"]["global_step"] == out["global_step"]


@pytest.mark.skipif(
    find_spec("torch") is None or find_spec("lightning") is None,
    reason=f"the Lightning hook's job test {TORCH_SKIP} and lightning",
)
def test_lightning_in_a_job(train_in_job: Job) -> None:
    run, out = train_in_job("pl-job", "train_lightning.py")
    run_dir = check_job_run(run, "pl-job")
    rows = read_metrics(run_dir)
    assert [r["step"] for r in rows if "train_loss" in r] == out["train_steps"]
    assert run["config"]["lr"] == 0.1 and run["config"]["layers/hidden"] == 4
    assert run["summary"]["test_loss"] == out["test_loss"]
