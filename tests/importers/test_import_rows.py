"""Points logged one key at a time become ``metrics.jsonl`` rows without losing any."""

from __future__ import annotations

from whirr.importers.model import Point
from whirr.importers.rows import metric_rows


def test_one_row_per_step_and_one_per_repeat_at_a_step() -> None:
    rows = metric_rows(
        [
            Point("loss", 0.5, 1, 20.0),
            Point("loss", 1.0, 0, 10.0),
            Point("acc", 0.1, 0, 11.0),
            Point("loss", 0.9, 0, 12.0),  # logged again at step 0 (MLflow's default step)
            Point("lr", 0.01, None, 5.0),  # no step at all: its own row
        ]
    )
    assert [{k: v for k, v in r.items() if k != "_timestamp"} for r in rows] == [
        {"_idx": 0, "lr": 0.01},
        {"_idx": 1, "step": 0, "loss": 1.0, "acc": 0.1},
        {"_idx": 2, "step": 0, "loss": 0.9},
        {"_idx": 3, "step": 1, "loss": 0.5},
    ]
    assert rows[1]["_timestamp"].timestamp() == 10.0  # the earliest of the row's points
