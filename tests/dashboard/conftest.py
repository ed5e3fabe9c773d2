"""Fixtures: a demo project and a real ``whirr dashboard`` process serving it."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from dashboard import demo
from dashboard.process import DashboardProcess


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, Any]]:
    """A demo project (its root) and the ids in it; shared by a module's tests."""
    root = tmp_path_factory.mktemp("dash") / "proj"
    root.mkdir()
    return root, demo.build(root)


@pytest.fixture(scope="module")
def dashboard(project: tuple[Path, dict[str, Any]]) -> Iterator[DashboardProcess]:
    """``whirr dashboard`` over the module's demo project."""
    proc = DashboardProcess(project[0])
    yield proc
    proc.stop()
