"""The value a run reached on a metric: its summary, else the last value it logged."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from whirr.projections import RunView


def read_metric_rows(run_dir: str | Path) -> list[dict[str, Any]]:
    """The rows of a run's ``metrics.jsonl`` (tolerant of a torn last line)."""
    try:
        from whirr.run import read_metrics
    except ImportError:  # pragma: no cover - only before the tracking library lands
        return _read_jsonl(Path(run_dir) / "metrics.jsonl")
    try:
        return read_metrics(run_dir)
    except ValueError:
        # A damaged line mid-file: a study's report should still show what can be read.
        return _read_jsonl(Path(run_dir) / "metrics.jsonl")


def _read_jsonl(path: Path) -> list[dict[str, Any]]:
    import msgspec

    try:
        lines = path.read_bytes().splitlines()
    except FileNotFoundError:
        return []
    rows = []
    for line in lines:
        try:
            rows.append(msgspec.json.decode(line))
        except msgspec.DecodeError:
            continue
    return rows


def as_number(value: Any) -> float | None:
    """``value`` as a finite float, or None (bools, strings, NaN, null are not numbers)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    number = float(value)
    return number if math.isfinite(number) else None


def metric_value(run: RunView | None, metric: str) -> float | None:
    """``summary[metric]`` when numeric, else the last numeric ``metric`` in
    ``metrics.jsonl``, else None."""
    if run is None:
        return None
    summarised = as_number(run.summary.get(metric))
    if summarised is not None:
        return summarised
    for row in reversed(read_metric_rows(run.run_dir)):
        value = as_number(row.get(metric))
        if value is not None:
            return value
    return None


def metric_series(run_dir: str | Path, metric: str) -> list[float]:
    """Every numeric value of ``metric`` a run logged, in order."""
    values = (as_number(row.get(metric)) for row in read_metric_rows(run_dir))
    return [v for v in values if v is not None]
