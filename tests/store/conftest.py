"""Backends for the store contract suite: each gives handles on one log and fresh logs.

PostgreSQL tests need ``WHIRR_TEST_POSTGRES_URL`` (``eval "$(tools/ci/postgres.sh)"``
starts a server and prints it). Without it they skip on a developer machine but *fail*
under CI (``CI`` set), so a CI run can never pass by quietly testing nothing. The session
gets a database of its own, and every log a schema of its own inside it (the store derives
its lock keys and notification channel from the schema, so logs do not interfere).
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import psycopg
import pytest
from psycopg import sql

from whirr.store import EventStore, open_store
from whirr.store.memory import MemoryStore

POSTGRES_URL_VAR = "WHIRR_TEST_POSTGRES_URL"


class Backend:
    """Opens handles on one log (``open``) and independent empty logs (``fresh``)."""

    def __init__(
        self,
        name: str,
        url: str | None,
        open_handle: Callable[[], EventStore],
        new_url: Callable[[], tuple[str | None, Callable[[], None]]],
    ) -> None:
        self.name = name
        #: How another process opens this log; None when it lives only in this process.
        self.url = url
        self._open_handle = open_handle
        self._new_url = new_url
        self._handles: list[EventStore] = []

    def open(self) -> EventStore:
        """Another handle on the test's log (its own connections and watchers)."""
        store = self._open_handle()
        self._handles.append(store)
        return store

    @contextmanager
    def fresh(self) -> Iterator[EventStore]:
        """A new, empty log, removed afterwards (one per hypothesis example)."""
        url, remove = self._new_url()
        store: EventStore = MemoryStore() if url is None else open_store(url)
        try:
            yield store
        finally:
            store.close()
            remove()

    def close(self) -> None:
        """Close every handle ``open`` gave out."""
        for store in self._handles:
            store.close()


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
def _ci() -> bool:
    return os.environ.get("CI", "").strip().lower() not in ("", "0", "false", "no")


@pytest.fixture(scope="session")
def postgres_url() -> str:
    """The server's URL from the environment: skip locally when absent, fail under CI."""
    url = os.environ.get(POSTGRES_URL_VAR, "").strip()
    if not url:
        message = (
            f'{POSTGRES_URL_VAR} is not set; start a server with `eval "$(tools/ci/postgres.sh)"`'
        )
        if _ci():
            pytest.fail(f"CI must run the PostgreSQL tests: {message}", pytrace=False)
        pytest.skip(message)
    return url


def with_database(url: str, database: str) -> str:
    """``url`` pointing at another database."""
    parts = urlsplit(url)
    return urlunsplit(parts._replace(path=f"/{database}"))


def with_schema(url: str, schema: str) -> str:
    """``url`` whose sessions work in ``schema`` (libpq ``options=-csearch_path=...``)."""
    parts = urlsplit(url)
    query = [(k, v) for k, v in parse_qsl(parts.query) if k != "options"]
    query.append(("options", f"-csearch_path={schema}"))
    return urlunsplit(parts._replace(query=urlencode(query)))


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


def new_schema(database_url: str) -> tuple[str, Callable[[], None]]:
    """Create an empty schema; returns a store URL working in it and its remover."""
    name = f"t_{uuid.uuid4().hex[:16]}"
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE SCHEMA {}").format(sql.Identifier(name)))

    def remove() -> None:
        with psycopg.connect(database_url, autocommit=True) as conn:
            conn.execute(sql.SQL("DROP SCHEMA {} CASCADE").format(sql.Identifier(name)))

    return with_schema(database_url, name), remove


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
