"""Parsed metric columns cached on disk: a restarted dashboard loads them instead of
parsing a long metrics.jsonl again, and never trusts a cache its file no longer matches."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pytest

from dashboard.demo import write_metrics
from dashboard.process import DashboardProcess
from whirr.dashboard import column_cache
from whirr.dashboard.series import Columns, read_new_lines
from whirr.events import Pending, RunFinished, RunStarted, run_stream
from whirr.project import Project, init_project


def parsed(path: Path) -> Columns:
    columns = Columns()
    read_new_lines(path, columns)
    return columns


def same(a: Columns, b: Columns) -> None:
    (_, rows_a, cols_a), (_, rows_b, cols_b) = a.snapshot(), b.snapshot()
    assert rows_a == rows_b and sorted(cols_a) == sorted(cols_b)
    for key, column in cols_a.items():
        np.testing.assert_array_equal(column, cols_b[key])


def cached(tmp_path: Path, rows: int = 50) -> tuple[Path, Path]:
    source = tmp_path / "metrics.jsonl"
    write_metrics(source, [{"step": i, "loss": 1 / (i + 1)} for i in range(rows)])
    cache = tmp_path / "cache" / "run.metrics.npz"
    column_cache.save(cache, source, *parsed(source).snapshot())
    return source, cache


def test_a_cache_restores_the_columns_and_only_new_lines_are_parsed(tmp_path: Path) -> None:
    source, cache = cached(tmp_path)
    write_metrics(source, [{"step": 50, "loss": 0.5, "acc": 0.9}], start_idx=50)
    columns = Columns()
    assert column_cache.load(cache, source, columns)
    assert columns.rows == 50 and columns.keys == ["loss"]
    read_new_lines(source, columns)  # the appended line only
    same(columns, parsed(source))
    assert columns.keys == ["acc", "loss"] and columns.rows == 51


@pytest.mark.parametrize("change", ["replaced", "cut", "corrupt", "missing"])
def test_a_cache_that_no_longer_matches_is_ignored(tmp_path: Path, change: str) -> None:
    source, cache = cached(tmp_path)
    if change == "replaced":  # same length, different last rows
        text = source.read_text()
        source.write_text(text.replace('"loss":0.02', '"loss":0.03'))
    elif change == "cut":
        source.write_bytes(source.read_bytes()[:100])
    elif change == "corrupt":
        cache.write_bytes(cache.read_bytes()[:200])
    else:
        cache.unlink()
    columns = Columns()
    assert not column_cache.load(cache, source, columns)
    assert columns.rows == 0 and columns.offset == 0


def test_a_read_only_cache_directory_costs_only_the_cache(tmp_path: Path) -> None:
    source = tmp_path / "metrics.jsonl"
    write_metrics(source, [{"loss": 1.0}])
    blocker = tmp_path / "cache"
    blocker.write_text("a file where the directory would go")
    column_cache.save(blocker / "run.metrics.npz", source, *parsed(source).snapshot())
    assert blocker.is_file()


def long_run(tmp_path: Path) -> tuple[Path, str, Path]:
    """A project with one started run of 100,000 rows (past ``MIN_BYTES``), a spike at
    row 77,777: (project root, run id, its metrics.jsonl)."""
    root = tmp_path / "proj"
    root.mkdir()
    project, _ = init_project(root)
    run_id = "local-20240101-000000-abcdef"
    run_dir = project.run_dir(run_id)
    run_dir.mkdir(parents=True)
    append(root, RunStarted(run_id=run_id, run_dir=str(run_dir), name="long", config={}))
    source = run_dir / "metrics.jsonl"
    rows = [{"step": i, "loss": 1 / (i + 1) + (5.0 if i == 77_777 else 0)} for i in range(100_000)]
    write_metrics(source, rows)
    assert source.stat().st_size > column_cache.MIN_BYTES
    return root, run_id, source


def append(root: Path, event: RunStarted | RunFinished) -> None:
    store = Project(root).open_store()
    try:
        store.append([Pending(run_stream(event.run_id), event)])
    finally:
        store.close()


def wait_for_file(path: Path, seconds: float = 20) -> None:
    deadline = time.monotonic() + seconds
    while not path.exists() and time.monotonic() < deadline:  # written in the background
        time.sleep(0.05)


def test_a_restarted_dashboard_draws_a_long_run_from_the_cache(tmp_path: Path) -> None:
    root, run_id, source = long_run(tmp_path)
    npz = root / ".whirr" / "cache" / "dashboard" / f"{run_id}.metrics.npz"
    path = f"/ui/runs/{run_id}/series?x=step&points=400"
    first = DashboardProcess(root)
    try:
        with first.client() as c:
            drawn = c.get(path).json()
        wait_for_file(npz)
    finally:
        first.stop()
    assert npz.exists()
    write_metrics(source, [{"step": 100_000, "loss": 9.0}], start_idx=100_000)
    second = DashboardProcess(root)
    try:
        with second.client() as c:
            again = c.get(path).json()
    finally:
        second.stop()
    assert drawn["rows"] == 100_000 and again["rows"] == 100_001
    loss = next(s for s in again["series"] if s["key"] == "loss")
    assert max(loss["y"]) == 9.0 and any(y > 5 for y in loss["y"][:-1])  # spike and tail


def test_a_run_that_finishes_is_cached_before_anyone_looks(tmp_path: Path) -> None:
    root, run_id, source = long_run(tmp_path)
    npz = column_cache.cache_path(Project(root).runs_dir, run_id, "metrics")
    dashboard = DashboardProcess(root)
    try:
        append(root, RunFinished(run_id=run_id, status="completed", exit_code=0))
        wait_for_file(npz)
    finally:
        dashboard.stop()
    columns = Columns()
    assert column_cache.load(npz, source, columns)
    same(columns, parsed(source))
    # Already current: a second build has nothing to write.
    assert not column_cache.build(npz, source)
