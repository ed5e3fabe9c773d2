"""Deleting a run removes the derived copies of it too (issue 19 item 1): the Parquet
copies of its metrics in the project's cache, never another run's (``big-a`` is not
``big-ab``). A real project, real cached copies made by the analytics session, the CLI."""

from __future__ import annotations

import os
from pathlib import Path

from cli_runner import run_cli
from test_analytics_support import new_project, project_session


def test_deleting_a_run_removes_its_cached_copies(tmp_path: Path) -> None:
    project, b = new_project(tmp_path / "p")
    curve = [{"step": i, "loss": 1 / (i + 1)} for i in range(1000)]
    for run_id in ("big-a", "big-ab"):
        b.run(run_id, metrics=curve)
    cache = project.dir / "cache" / "metrics"
    with project_session(project) as session:
        session.segments(session.whirr.runs(limit=None))
    assert sorted(n.split(".")[0] for n in os.listdir(cache)) == ["big-a", "big-ab"]

    done = run_cli("runs", "delete", "big-a", "--yes", cwd=project.root)
    assert done.returncode == 0, done.stderr
    assert sorted(n.split(".")[0] for n in os.listdir(cache)) == ["big-ab"]
