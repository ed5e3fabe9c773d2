"""The store contract on PostgreSQL, plus what only this backend has: migrations by
version, row locks on claims, and a LISTEN connection that reconnects."""

from __future__ import annotations

import threading
import time
from typing import Any

import psycopg
import pytest
from store_backends import Backend, new_schema
from store_durable import DurableStoreContract
from store_support import run_threads, seen

from whirr.projections import PROJECTIONS
from whirr.services import Jobs
from whirr.store import StoreError, open_store
from whirr.store.postgres import SCHEMA_VERSION, PostgresStore
from whirr.store.postgres.schema import Q
from whirr.store.postgres.views import _GET_VIEW, VIEW_TABLES

pytestmark = pytest.mark.postgres


class TestPostgresStore(DurableStoreContract):
    @pytest.fixture
    def backend(self, postgres_backend: Backend) -> Backend:
        return postgres_backend


@pytest.fixture
def url(postgres_backend: Backend) -> str:
    assert postgres_backend.url is not None
    return postgres_backend.url


def test_a_new_schema_gets_the_current_version(url: str) -> None:
    store = PostgresStore(url)
    try:
        assert store.schema_version() == SCHEMA_VERSION
    finally:
        store.close()


def test_stores_opened_together_migrate_once(postgres_database: str) -> None:
    url, remove = new_schema(postgres_database)
    stores: list[PostgresStore] = []
    errors: list[BaseException] = []

    def open_one() -> None:
        try:
            stores.append(PostgresStore(url))
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=open_one) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    try:
        assert errors == []
        assert [s.schema_version() for s in stores] == [SCHEMA_VERSION] * 4
    finally:
        for s in stores:
            s.close()
        remove()


def test_every_projection_has_a_table() -> None:
    assert set(VIEW_TABLES) == set(_GET_VIEW) == {p.name for p in PROJECTIONS}


def test_an_older_schema_is_migrated_in_place(url: str) -> None:
    """A log written at version 1 gains the later versions' columns and tables and keeps
    its events."""
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(Q["create_schema_version"])
        conn.execute(Q["migrate_v1"])
        conn.execute(Q["record_version"], {"version": 1})
        conn.execute(
            "INSERT INTO events (position, stream, type, recorded_at, data) "
            "VALUES (1, 'worker-a', 'worker.seen', now(), %s::json)",
            ('{"type":"worker.seen","worker_id":"a"}',),
        )
    store = PostgresStore(url)
    try:
        assert store.schema_version() == SCHEMA_VERSION == 4
        assert store.head() == 1
        assert store.append([seen("b")]) == 2
        assert store.queue_state().paused is False
    finally:
        store.close()


def test_a_newer_schema_version_is_refused(url: str) -> None:
    PostgresStore(url).close()
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("INSERT INTO schema_version (version) VALUES (%s)", (SCHEMA_VERSION + 1,))
    with pytest.raises(StoreError, match="newer than this whirr"):
        PostgresStore(url)


def test_an_unreachable_server_is_a_store_error_without_the_password() -> None:
    with pytest.raises(StoreError) as caught:
        open_store("postgresql://whirr:s3cret-pw@127.0.0.1:1/whirr")
    assert "127.0.0.1:1/whirr" in str(caught.value)
    assert "s3cret-pw" not in str(caught.value)


def test_claims_skip_rows_locked_by_another_transaction(url: str) -> None:
    store = open_store(url)
    try:
        jobs = Jobs(store)
        for _ in range(2):
            jobs.submit(["true"], "/", check=False)
        with psycopg.connect(url) as other:  # e.g. an operator's repair script
            other.execute("SELECT id FROM jobs WHERE id = 1 FOR UPDATE")
            claimed = jobs.claim("w", 60)
            assert claimed is not None and claimed.id == 2
            other.rollback()
        claimed = jobs.claim("w", 60)
        assert claimed is not None and claimed.id == 1
    finally:
        store.close()


def _kill_listeners(url: str) -> int:
    with psycopg.connect(url, autocommit=True) as conn:
        rows = conn.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            "WHERE application_name = 'whirr-listen' AND datname = current_database()"
        ).fetchall()
    return len(rows)


def _until(condition: Any, timeout: float = 30.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.02)
    return False


def test_waiters_survive_a_lost_listen_connection(url: str) -> None:
    waiter, writer = PostgresStore(url), PostgresStore(url)
    try:
        waiter.append([seen("a")])
        assert waiter.wait(0, 1.0)  # starts the listener
        listener = waiter._listener
        assert listener is not None and _until(lambda: listener.listening)
        assert _kill_listeners(url) >= 1
        woke: list[bool] = []
        thread = threading.Thread(target=lambda: woke.append(waiter.wait(1, 60)))
        thread.start()
        writer.append([seen("b")])
        thread.join(70)
        assert woke == [True]  # by polling meanwhile, or by the new connection
        assert _until(lambda: listener.listening), "the listener did not reconnect"
        # Once back, notifications wake waiters again.
        woke.clear()
        thread = threading.Thread(target=lambda: woke.append(waiter.wait(2, 60)))
        thread.start()
        writer.append([seen("c")])
        thread.join(70)
        assert woke == [True]
    finally:
        waiter.close()
        writer.close()


def _terminate(url: str, *application_names: str) -> int:
    """End the sessions of this database with those names (as a server restart would),
    and wait until they are gone."""
    names = list(application_names)
    with psycopg.connect(url, autocommit=True) as conn:
        pids = [
            pid
            for (pid,) in conn.execute(
                "SELECT pid FROM pg_stat_activity WHERE datname = current_database() "
                "AND application_name = ANY(%s) AND pid <> pg_backend_pid()",
                (names,),
            )
        ]
        for pid in pids:
            conn.execute("SELECT pg_terminate_backend(%s)", (pid,))
        assert _until(
            lambda: (
                not conn.execute(
                    "SELECT 1 FROM pg_stat_activity WHERE pid = ANY(%s)", (pids,)
                ).fetchall()
            )
        )
    return len(pids)


def test_connections_that_died_are_replaced_without_an_error(url: str) -> None:
    """After the server dropped every session of a store (a restart), its next read and
    its next write both succeed: the pool replaces its dead connections, the writer
    reconnects (nothing had run, so its batch simply runs again)."""
    store = PostgresStore(url)
    try:
        store.append([seen("a")])  # the writer's connection
        assert [store.head() for _ in range(3)] == [1, 1, 1]  # pooled ones
        assert _terminate(url, "whirr", "whirr-write") >= 2
        assert store.head() == 1
        assert store.job_counts() == {}
        assert store.append([seen("b")]) == 2
        assert [r.position for r in store.read()] == [1, 2]
    finally:
        store.close()


def test_a_batch_whose_connection_dies_midway_fails_for_its_callers_only(url: str) -> None:
    """A connection lost while a batch runs fails that batch's callers with a StoreError
    (nothing was committed); the next transaction works on a new connection."""
    store = PostgresStore(url)
    try:
        store.append([seen("a")])

        def dies(reader: Any) -> list[Any]:
            _terminate(url, "whirr-write")
            reader.jobs()  # the next statement finds the connection gone
            return [seen("never")]

        with pytest.raises(StoreError, match="nothing was committed"):
            store.transact(dies)
        assert store.append([seen("b")]) == 2
        assert [r.event for r in store.read()] == [seen("a").event, seen("b").event]
    finally:
        store.close()


def test_a_value_postgresql_cannot_hold_fails_only_its_own_decision(url: str) -> None:
    """PostgreSQL text cannot hold NUL: such a decision fails on the client, alone, while
    the decisions batched with it are recorded."""
    store = PostgresStore(url)
    try:
        names = [f"w{i}" if i % 3 else f"w\x00{i}" for i in range(12)]
        outcomes = run_threads([lambda n=n: _append_or_error(store, n) for n in names])
        for name, outcome in zip(names, outcomes, strict=True):
            if "\x00" in name:
                assert isinstance(outcome, StoreError) and "NUL" in str(outcome)
            else:
                assert isinstance(outcome, int)
        stored = sorted(r.event.worker_id for r in store.read())  # type: ignore[attr-defined]
        assert stored == sorted(n for n in names if "\x00" not in n)
    finally:
        store.close()


def _append_or_error(store: PostgresStore, worker_id: str) -> int | StoreError:
    try:
        return store.append([seen(worker_id)])
    except StoreError as exc:
        return exc


def test_a_decision_cannot_transact_on_its_own_store(url: str) -> None:
    store = PostgresStore(url)
    try:
        with pytest.raises(StoreError, match="cannot start another transaction"):
            store.transact(lambda reader: store.transact(lambda inner: []))
        assert store.append([seen("a")]) == 1
    finally:
        store.close()


def test_separate_schemas_are_separate_logs(postgres_database: str) -> None:
    url_a, remove_a = new_schema(postgres_database)
    url_b, remove_b = new_schema(postgres_database)
    a, b = PostgresStore(url_a), PostgresStore(url_b)
    try:
        a.append([seen("a"), seen("a")])
        b.append([seen("b")])
        assert (a.head(), b.head()) == (2, 1)
        assert a.names.channel != b.names.channel
        assert a.names.append_lock != b.names.append_lock
        assert b.wait(1, 0.2) is False  # a's appends do not count for b
    finally:
        a.close()
        b.close()
        remove_a()
        remove_b()
