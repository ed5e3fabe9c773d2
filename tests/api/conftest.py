"""A real ``whirr server`` (SQLite under a temporary data dir) shared by a test module."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from server_process import ServerProcess

from whirr.client import WhirrClient


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    """One server for the module, with token ``test-token``."""
    proc = ServerProcess(Path(tmp_path_factory.mktemp("server")))
    yield proc
    proc.stop()


@pytest.fixture
def client(server: ServerProcess) -> Iterator[WhirrClient]:
    """A ``WhirrClient`` with the server's token."""
    with WhirrClient(server.url, token=server.token) as c:
        yield c
