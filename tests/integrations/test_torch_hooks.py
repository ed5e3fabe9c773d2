"""whirr.integrations.transformers and .lightning: a real short Hugging Face Trainer run
and a real Lightning fit + test on CPU log what the framework logs, at its steps.

torch is not installed in CI (PyPI's Linux torch wheel pulls ~2.5 GB of CUDA wheels), so
these tests run only where torch and the framework can be imported, and are skipped,
saying so, elsewhere: the only skips of this suite."""

from __future__ import annotations

import json
from collections.abc import Callable
from importlib.util import find_spec
from typing import Any

import pytest

from whirr.project import Project
from whirr.run import read_meta, read_metrics

NO_TORCH = "torch is not installed (not in CI: PyPI's Linux torch pulls ~2.5 GB of CUDA wheels)"
RESERVED = {"_idx", "_timestamp", "step"}


def last_values(rows: list[dict[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for row in rows:
        out.update({k: v for k, v in row.items() if k not in RESERVED})
    return out


@pytest.mark.skipif(
    find_spec("torch") is None or find_spec("transformers") is None,
    reason=f"Hugging Face hook: {NO_TORCH}, or transformers is not",
)
def test_a_trainer_run_and_a_later_evaluate(
    project: Project, train: Callable[..., dict[str, Any]]
) -> None:
    out = train("train_transformers.py")
    run_dir = project.run_dir(out["run_id"])
    rows = read_metrics(run_dir)
    # Every Trainer log is a row at its global step, with the log's numbers exactly.
    history = out["log_history"]
    assert [r["step"] for r in rows] == [h["step"] for h in history]
    for row, logged in zip(rows, history, strict=True):
        assert {k: v for k, v in row.items() if k not in RESERVED} == {
            k: v for k, v in logged.items() if k != "step"
        }
    assert [r["step"] for r in rows if "loss" in r] == list(range(1, 9))  # 16 / 4 x 2 epochs
    assert [r["step"] for r in rows if "eval_loss" in r] == [4, 8, 8]  # 2 epochs + evaluate()
    meta = read_meta(run_dir) or {}
    # The run stayed open for evaluate() and ended with the process.
    assert out["status"] == "running" and meta["status"] == "completed"
    assert meta["name"] == "hf-tiny"
    assert meta["summary"] == {**last_values(rows), "global_step": 8}
    config = json.loads((run_dir / "config.json").read_text())
    assert config["learning_rate"] == 0.01 and config["num_train_epochs"] == 2
    assert config["per_device_train_batch_size"] == 4 and config["report_to"] == []
    assert config["model/hidden_size"] == 8 and config["model/model_type"] == "bert"
    assert config["data"] == "random"


@pytest.mark.skipif(
    find_spec("torch") is None or find_spec("lightning") is None,
    reason=f"Lightning hook: {NO_TORCH}, or lightning is not",
)
def test_a_lightning_fit_and_test(project: Project, train: Callable[..., dict[str, Any]]) -> None:
    out = train("train_lightning.py")
    run_dir = project.run_dir(out["run_id"])
    assert out["version"] == out["run_id"]
    rows = read_metrics(run_dir)
    # What Lightning handed its loggers, step for step and value for value.
    assert [r["step"] for r in rows] == [r["step"] for r in out["rows"]]
    for row, logged in zip(rows, out["rows"], strict=True):
        assert {k: v for k, v in row.items() if k not in RESERVED} == {
            k: v for k, v in logged.items() if k != "step"
        }
    assert out["train_steps"] == list(range(8))  # 16 / 4 x 2 epochs
    meta = read_meta(run_dir) or {}
    assert out["status"] == "running" and meta["status"] == "completed"
    assert meta["name"] == "pl-tiny" and meta["tags"] == ["lightning"]
    assert meta["summary"] == last_values(rows)
    assert meta["summary"]["test_loss"] == out["test_loss"]
    # save_hyperparameters(), nested dicts flattened: logged before the run started.
    assert json.loads((run_dir / "config.json").read_text()) == {"lr": 0.1, "layers/hidden": 4}
