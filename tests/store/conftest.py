"""Backends for the store contract suite: each gives handles on one log and fresh logs.

PostgreSQL tests need ``WHIRR_TEST_POSTGRES_URL`` (``eval "$(tools/ci/postgres.sh)"``
starts a server and prints it). Without it they skip on a developer machine but *fail*
under CI (``CI`` set), so a CI run can never pass by quietly testing nothing. The session
gets a database of its own, and every log a schema of its own inside it (the store derives
its lock keys and notification channel from the schema, so logs do not interfere).
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import psycopg
import pytest
from postgres_env import postgres_url_or_skip
from psycopg import sql
from store_backends import Backend, new_schema, with_database

from whirr.store import open_store
from whirr.store.memory import MemoryStore


@pytest.fixture
def memory_backend() -> Iterator[Backend]:
    """The in-memory store: every ``open`` returns the same instance."""
    store = MemoryStore()
    backend = Backend("memory", None, lambda: store, lambda: (None, lambda: None))
    yield backend
    backend.close()


@pytest.fixture
def sqlite_backend(tmp_path: Path) -> Iterator[Backend]:
    """A real SQLite file under tmp_path; fresh logs are further files beside it."""
    url = f"sqlite:///{tmp_path / 'whirr.db'}"

    def new_url() -> tuple[str | None, Callable[[], None]]:
        directory = tmp_path / uuid.uuid4().hex
        directory.mkdir()
        return f"sqlite:///{directory / 'whirr.db'}", lambda: None

    backend = Backend("sqlite", url, lambda: open_store(url), new_url)
    yield backend
    backend.close()


# -- PostgreSQL ----------------------------------------------------------------
@pytest.fixture(scope="session")
def postgres_url() -> str:
    """The server's URL from the environment: skip locally when absent, fail under CI."""
    return postgres_url_or_skip()


@pytest.fixture(scope="session")
def postgres_database(postgres_url: str) -> Iterator[str]:
    """A database of this test session's own, dropped at the end."""
    name = f"whirr_test_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(postgres_url, autocommit=True) as admin:
        admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    try:
        yield with_database(postgres_url, name)
    finally:
        with psycopg.connect(postgres_url, autocommit=True) as admin:
            admin.execute(sql.SQL("DROP DATABASE {} WITH (FORCE)").format(sql.Identifier(name)))


@pytest.fixture
def postgres_backend(postgres_database: str) -> Iterator[Backend]:
    """A fresh schema in the session's database; fresh logs are further schemas."""
    url, remove = new_schema(postgres_database)

    def new_url() -> tuple[str | None, Callable[[], None]]:
        return new_schema(postgres_database)

    backend = Backend("postgres", url, lambda: open_store(url), new_url)
    yield backend
    backend.close()
    remove()
