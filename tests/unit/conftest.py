"""Fixtures shared by the unit tests."""

from __future__ import annotations

from pathlib import Path

import pytest
from test_analytics_support import new_project, sweep

from whirr.project import Project


@pytest.fixture
def swept(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Project:
    """A project holding the analytics sweep (runs of known metrics), and the cwd in it."""
    project, builder = new_project(tmp_path / "proj")
    sweep(builder)
    monkeypatch.chdir(project.root)
    return project
