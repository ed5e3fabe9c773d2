"""Metric columns read incrementally from JSONL, as a live chart needs them."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from dashboard.demo import write_metrics
from whirr.dashboard.series import Columns, SeriesCache, read_new_lines


def test_rows_are_read_once_then_only_what_was_appended(tmp_path: Path) -> None:
    path = tmp_path / "metrics.jsonl"
    write_metrics(path, [{"step": i * 10, "loss": 1 / (i + 1)} for i in range(100)])
    columns = Columns()
    assert read_new_lines(path, columns)
    assert columns.rows == 100 and columns.keys == ["loss"]
    assert not read_new_lines(path, columns)  # nothing new: nothing read
    write_metrics(path, [{"step": 1000, "loss": 0.001, "acc": 0.9}], start_idx=100)
    assert read_new_lines(path, columns)
    assert columns.rows == 101 and columns.keys == ["acc", "loss"]
    acc = columns.column("acc")
    # A key that appears late is NaN before it, so every column stays aligned by row.
    assert len(acc) == 101 and np.isnan(acc[:100]).all() and acc[100] == 0.9
    assert columns.last() == {"acc": 0.9, "loss": 0.001}


def test_a_torn_last_line_waits_for_its_newline(tmp_path: Path) -> None:
    path = tmp_path / "metrics.jsonl"
    write_metrics(path, [{"loss": 1.0}, {"loss": 0.5}])
    with path.open("ab") as fh:
        fh.write(b'{"_idx": 2, "loss": 0.2')
    columns = Columns()
    read_new_lines(path, columns)
    assert columns.rows == 2
    with path.open("ab") as fh:
        fh.write(b', "step": 7}\n')
    read_new_lines(path, columns)
    assert columns.rows == 3 and columns.column("loss")[2] == 0.2


def test_a_garbled_line_costs_only_itself(tmp_path: Path) -> None:
    path = tmp_path / "metrics.jsonl"
    path.write_bytes(b'{"_idx": 0, "loss": 1}\nnot json\n{"_idx": 2, "loss": 3}\n')
    columns = Columns()
    read_new_lines(path, columns)
    assert columns.column("loss").tolist() == [1.0, 3.0]


def test_series_use_step_time_or_index_and_skip_rows_without_the_key(tmp_path: Path) -> None:
    path = tmp_path / "metrics.jsonl"
    rows = [{"step": 100 + i, "loss": float(i)} for i in range(10)]
    rows[4] = {"step": 104, "other": 1.0}
    rows.append({"loss": 99.0})  # no step: falls back to its row index
    write_metrics(path, rows)
    columns = Columns()
    read_new_lines(path, columns)
    by_step = columns.series("loss", "step", 100)
    assert by_step["total"] == 10
    assert by_step["x"][:4] == [100, 101, 102, 103] and 104 not in by_step["x"]
    assert by_step["x"][-1] == 10 and by_step["y"][-1] == 99.0
    by_time = columns.series("loss", "time", 100)
    assert by_time["x"][0] == 0.0 and by_time["x"][1] == 1.0  # seconds since the first row
    assert columns.series("loss", "index", 100)["x"][:2] == [0, 1]
    assert columns.series("missing", "step", 100)["total"] == 0


def test_strings_and_booleans_are_not_charted(tmp_path: Path) -> None:
    path = tmp_path / "metrics.jsonl"
    write_metrics(path, [{"phase": "warmup", "done": True, "loss": 1.0, "lr": None}])
    columns = Columns()
    read_new_lines(path, columns)
    assert columns.keys == ["loss"]


def test_a_million_points_come_back_as_about_a_thousand(tmp_path: Path) -> None:
    columns = Columns()
    n = 1_000_000
    big = np.ones(n)
    big[777_777] = 50.0
    columns.extend([{"_idx": i, "step": i, "loss": float(v)} for i, v in enumerate(big)])
    series = columns.series("loss", "step", 1000)
    assert series["total"] == n and len(series["x"]) <= 1002
    assert 50.0 in series["y"]


def test_the_cache_drops_the_least_recently_used() -> None:
    cache = SeriesCache(capacity=2)
    a = cache.get("a", "metrics")
    cache.get("b", "metrics")
    assert cache.get("a", "metrics") is a
    cache.get("c", "metrics")  # evicts b, the least recently used
    assert cache.get("a", "metrics") is a
    assert cache.get("b", "metrics") is not None and len(cache._items) == 2
