"""Fixtures of the chaos suite: the Rust worker binary, a private PostgreSQL cluster, and
one ``Chaos`` trial per test with CI's short lease and grace."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from server_process import rust_worker_binary

from chaos.harness import Chaos, Settings
from chaos.postgres import ClusterUnavailable, PrivateCluster

#: CI's lease and grace: short, so a lost worker's job comes back within seconds, and
#: long enough that a busy 2-core machine renews well inside it.
CI_SETTINGS = Settings(lease=15.0, heartbeat=2.0, grace=1.0)

if sys.platform != "linux":  # the workers, /proc and the signals are Linux's
    collect_ignore_glob = ["test_*.py"]


def in_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() not in ("", "0", "false", "no")


def new_cluster() -> PrivateCluster:
    """A private cluster; a skip on a developer machine without PostgreSQL, a failure
    under CI (which must run these)."""
    try:
        return PrivateCluster()
    except ClusterUnavailable as exc:
        if in_ci():
            pytest.fail(f"CI must run the PostgreSQL chaos tests: {exc}", pytrace=False)
        pytest.skip(str(exc))


@pytest.fixture(scope="session")
def rust_binary() -> Path:
    return rust_worker_binary()


@pytest.fixture(scope="session")
def shared_cluster() -> Iterator[PrivateCluster]:
    """The suite's own cluster for the PostgreSQL backend (never the shared test server:
    a fault may restart it); each trial gets a schema of its own."""
    cluster = new_cluster()
    try:
        yield cluster
    finally:
        cluster.close()


@pytest.fixture
def own_cluster() -> Iterator[PrivateCluster]:
    """A cluster for one test alone (the PostgreSQL-restart fault crashes it)."""
    cluster = new_cluster()
    try:
        yield cluster
    finally:
        cluster.close()


def trial(
    request: pytest.FixtureRequest, root: Path, worker: str, database_url: str | None
) -> Chaos:
    """A trial with CI's settings; ``CHAOS_SEED`` replays a failure's random choices."""
    binary = request.getfixturevalue("rust_binary") if worker == "rust" else None
    seed = os.environ.get("CHAOS_SEED", "").strip()
    return Chaos(
        root,
        worker,
        settings=CI_SETTINGS,
        database_url=database_url,
        rust_binary=binary,
        seed=int(seed) if seed else None,
    )
