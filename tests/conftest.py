"""Shared fixtures: real projects on disk and the real CLI."""

from __future__ import annotations

import signal
from collections.abc import Iterator
from pathlib import Path

import pytest

from whirr.project import Project, init_project


def _signal_defaults_for_children() -> None:
    """Tests send SIGINT and SIGHUP to the workers, servers and commands they start, and
    judge what those do with them. An ignored signal stays ignored across exec, so a
    pytest run under ``nohup`` (SIGHUP) or in the background of a non-interactive shell
    (SIGINT: tools/test.sh's fault lane) would start every process deaf to them and fail
    or, worse, pass without testing anything. A handled signal resets to the default on
    exec: handle them here instead (SIGHUP with a no-op, so this run still outlives a
    hangup as ``nohup`` asked)."""
    if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
        signal.signal(signal.SIGINT, signal.default_int_handler)
    if signal.getsignal(signal.SIGHUP) is signal.SIG_IGN:
        signal.signal(signal.SIGHUP, lambda signum, frame: None)


_signal_defaults_for_children()


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
