"""A PostgreSQL store that cannot write says so on one line, as the SQLite store does
(issue 18): a read-only database and a lost connection are ``StoreWriteError``s (nothing
recorded; the same write succeeds once the cause is gone), and reads go on meanwhile.

A real server: a scratch database of the test's own made read-only with ``ALTER DATABASE
... SET default_transaction_read_only``, a writer connection terminated mid-decision."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest
from postgres_env import postgres_url_or_skip
from psycopg import sql
from store_backends import with_database
from store_support import job_submitted

from whirr.store import StoreWriteError, open_store

pytestmark = pytest.mark.postgres


@pytest.fixture
def scratch(postgres_url: str) -> Iterator[tuple[str, str]]:
    """(URL, name) of a database of this test's own, dropped afterwards (altered and
    dropped from the session's own database: a read-only one cannot alter itself)."""
    name = f"whirr_werr_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(postgres_url, autocommit=True) as admin:
        admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    try:
        yield with_database(postgres_url, name), name
    finally:
        with psycopg.connect(postgres_url, autocommit=True) as admin:
            admin.execute(sql.SQL("DROP DATABASE {} WITH (FORCE)").format(sql.Identifier(name)))


def read_only(name: str, on: bool) -> None:
    statement = "ALTER DATABASE {} SET default_transaction_read_only = on"
    if not on:
        statement = "ALTER DATABASE {} RESET default_transaction_read_only"
    with psycopg.connect(postgres_url_or_skip(), autocommit=True) as conn:
        conn.execute(sql.SQL(statement).format(sql.Identifier(name)))


def test_a_read_only_database_is_a_one_line_write_error(scratch: tuple[str, str]) -> None:
    url, name = scratch
    store = open_store(url)
    try:
        store.append([job_submitted(1)])
    finally:
        store.close()
    read_only(name, on=True)
    store = open_store(url)  # opens for reading: nothing to migrate, nothing written
    try:
        assert [j.id for j in store.jobs()] == [1]
        with pytest.raises(StoreWriteError) as caught:
            store.append([job_submitted(2)])
        message = str(caught.value)
        assert "\n" not in message and "read-only" in message, message
        assert "nothing was committed" in message and "Traceback" not in message
        assert store.head() == 1 and store.job(2) is None  # reads go on meanwhile
        read_only(name, on=False)
        assert store.append([job_submitted(2)]) == 2  # the same write, once it is fixed
    finally:
        store.close()


def test_a_lost_connection_is_a_one_line_write_error(scratch: tuple[str, str]) -> None:
    url, _ = scratch
    store = open_store(url)
    try:
        store.append([job_submitted(1)])
        with psycopg.connect(url, autocommit=True) as admin:

            def decide(reader: Any) -> list[Any]:
                pid = reader.conn.info.backend_pid  # the writer's own session, cut mid-batch
                admin.execute("SELECT pg_terminate_backend(%s)", (pid,))
                return [job_submitted(2)]

            with pytest.raises(StoreWriteError) as caught:
                store.transact(decide)
        message = str(caught.value)
        assert "\n" not in message and "connection" in message, message
        assert store.head() == 1
        assert store.append([job_submitted(2)]) == 2  # the writer connects afresh
    finally:
        store.close()
