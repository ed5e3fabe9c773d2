"""Backends of the store contract suite: handles on one log, fresh logs, scratch schemas.

(Kept out of conftest.py so that test modules can import it by a name no other test
directory uses.)
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import psycopg
from psycopg import sql

from whirr.store import EventStore, open_store
from whirr.store.memory import MemoryStore


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


def new_schema(database_url: str) -> tuple[str, Callable[[], None]]:
    """Create an empty schema; returns a store URL working in it and its remover."""
    name = f"t_{uuid.uuid4().hex[:16]}"
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE SCHEMA {}").format(sql.Identifier(name)))

    def remove() -> None:
        with psycopg.connect(database_url, autocommit=True) as conn:
            conn.execute(sql.SQL("DROP SCHEMA {} CASCADE").format(sql.Identifier(name)))

    return with_schema(database_url, name), remove
