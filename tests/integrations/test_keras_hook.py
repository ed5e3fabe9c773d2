"""whirr.integrations.keras: a real Keras fit (JAX backend, CPU) logs its epochs, config
and summary to a whirr run, started by the callback or given to it."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from whirr.project import Project
from whirr.run import read_meta, read_metrics

KEYS = ["loss", "mae", "val_loss", "val_mae"]


def epochs_of(history: dict[str, list[float]]) -> list[dict[str, float]]:
    """Keras' History as one dict per epoch."""
    return [{k: history[k][i] for k in KEYS} for i in range(len(history["loss"]))]


def test_the_callback_starts_logs_and_finishes_its_run(
    project: Project, train: Callable[..., dict[str, Any]]
) -> None:
    out = train("train_keras.py", "own")
    run_dir = project.run_dir(out["run_id"])
    rows = read_metrics(run_dir)
    # One row per epoch, at Keras' epoch (0 first), with exactly Keras' logged values.
    assert [r["step"] for r in rows] == [0, 1, 2]
    assert [{k: r[k] for k in KEYS} for r in rows] == epochs_of(out["history"])
    assert all(set(r) == {"_idx", "_timestamp", "step", *KEYS} for r in rows)
    meta = read_meta(run_dir) or {}
    assert out["status"] == meta["status"] == "completed"
    assert meta["name"] == "keras-tiny" and meta["tags"] == ["keras"]
    # 40 samples, a quarter held out, batches of 10: 3 steps an epoch.
    assert meta["summary"] == {**epochs_of(out["history"])[-1], "epochs_trained": 3}
    config = (run_dir / "config.json").read_text()
    assert json.loads(config) == {
        "epochs": 3,
        "steps_per_epoch": 3,
        "optimizer": "SGD",
        "learning_rate": 0.01,
        "units": 4,
    }


def test_a_given_run_gets_the_epochs_and_stays_open(
    project: Project, train: Callable[..., dict[str, Any]]
) -> None:
    out = train("train_keras.py", "given")
    run_dir = project.run_dir(out["run_id"])
    rows = read_metrics(run_dir)
    assert [r["step"] for r in rows] == [0, 1, 2, 3]
    assert rows[-1]["after_fit"] == 1.0  # logged by the script after fit: still open
    meta = read_meta(run_dir) or {}
    assert meta["name"] == "given" and meta["status"] == "completed"
    assert meta["summary"]["epochs_trained"] == 3
    assert json.loads((run_dir / "config.json").read_text()) == {"units": 4}
