"""Shared fixtures: real projects on disk and the real CLI."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from whirr.project import Project, init_project

WHIRR = [sys.executable, "-m", "whirr.cli.main"]


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


def run_cli(
    *args: str,
    cwd: Path,
    env: dict[str, str] | None = None,
    check: bool = False,
    timeout: float = 60,
) -> subprocess.CompletedProcess[str]:
    """Run the real ``whirr`` CLI in a subprocess."""
    full_env = {**os.environ, **(env or {})}
    result = subprocess.run(
        [*WHIRR, *args], cwd=cwd, env=full_env, capture_output=True, text=True, timeout=timeout
    )
    if check and result.returncode != 0:
        raise AssertionError(f"whirr {' '.join(args)} failed: {result.stderr}")
    return result
