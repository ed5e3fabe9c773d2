"""Turning a source's logged points into ``metrics.jsonl`` rows (pure).

Other tools log one key at a time (MLflow, TensorBoard) where whirr logs a row of keys
per ``run.log()``. The points of one step become one row, in step order; a key logged
several times at the same step (MLflow's default step is 0) gets one row per value, so
no value is lost: the n-th value of each key at a step goes in that step's n-th row. A
row's ``_timestamp`` is the earliest of its points' times.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

from whirr.importers.model import Point


def metric_rows(points: Iterable[Point]) -> list[dict[str, Any]]:
    """``_idx``, ``_timestamp``, ``step`` (when the source has one) and the values."""
    rows: dict[tuple[int, int, int], dict[str, Any]] = {}
    times: dict[tuple[int, int, int], float] = {}
    seen: dict[tuple[int | None, str], int] = {}
    for point in sorted(points, key=lambda p: (p.step is not None, p.step or 0, p.time)):
        nth = seen.get((point.step, point.key), 0)
        seen[(point.step, point.key)] = nth + 1
        # Points without a step keep their own rows, in time order.
        slot = (0, 0, len(rows)) if point.step is None else (1, point.step, nth)
        row = rows.setdefault(slot, {})
        row[point.key] = point.value
        times[slot] = min(times.get(slot, point.time), point.time)
    out = []
    for idx, slot in enumerate(sorted(rows)):
        head: dict[str, Any] = {
            "_idx": idx,
            "_timestamp": datetime.fromtimestamp(times[slot], UTC),
        }
        if slot[0]:
            head["step"] = slot[1]
        out.append({**head, **{k: v for k, v in rows[slot].items() if k not in head}})
    return out
