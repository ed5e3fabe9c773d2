"""Shared fixtures: real projects on disk and the real CLI."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from whirr.project import Project, init_project


@pytest.fixture
def project(tmp_path: Path) -> Project:
    """A fresh project under tmp_path with quick heartbeats (so lease tests run fast)."""
    proj, _ = init_project(tmp_path / "proj")
    proj.config_path.write_text(
        "heartbeat_interval: 0.2\nheartbeat_timeout: 1.5\nkill_grace_period: 1\n"
        "poll_interval: 1\nmax_attempts: 3\n"
    )
    return proj


@pytest.fixture
def store(project: Project) -> Iterator[object]:
    """The project's SQLite store."""
    s = project.open_store()
    yield s
    s.close()
