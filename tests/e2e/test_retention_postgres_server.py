"""``whirr server --retention`` over a PostgreSQL log (issue 19 item 3): a month-old
history of liveness leaves the database for a segment in the server's data dir on the
server's schedule, and a full replay through it gives the views the log gave before."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import psycopg
import pytest
from postgres_env import postgres_url_or_skip
from psycopg import sql
from server_process import ServerProcess, wait_for

from whirr.clock import utc_now
from whirr.services import Workers
from whirr.store.postgres import PostgresStore

pytestmark = pytest.mark.postgres


@pytest.fixture
def database_url() -> Iterator[str]:
    """A store URL working in a fresh schema of the test database (dropped after)."""
    base = postgres_url_or_skip()
    name = f"t_{uuid.uuid4().hex[:16]}"
    with psycopg.connect(base, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE SCHEMA {}").format(sql.Identifier(name)))
    parts = urlsplit(base)
    query = [(k, v) for k, v in parse_qsl(parts.query) if k != "options"]
    query.append(("options", f"-csearch_path={name}"))
    yield urlunsplit(parts._replace(query=urlencode(query)))
    with psycopg.connect(base, autocommit=True) as conn:
        conn.execute(sql.SQL("DROP SCHEMA {} CASCADE").format(sql.Identifier(name)))


def _views(store: PostgresStore) -> tuple[object, ...]:
    return (store.head(), store.workers(), store.jobs(), store.queue_state())


def test_a_postgresql_server_with_retention_archives_into_its_data_dir(
    tmp_path: Path, database_url: str
) -> None:
    first = ServerProcess(tmp_path, database_url=database_url)  # the schema and project
    first.stop()
    past = utc_now() - timedelta(days=30)
    store = PostgresStore(database_url, clock=lambda: past)
    try:
        for _ in range(6):
            Workers(store).seen("w1")
    finally:
        store.close()
    fresh = PostgresStore(database_url)
    try:
        Workers(fresh).seen("w1")
        fresh.rebuild(full=True)
        before = _views(fresh)
    finally:
        fresh.close()

    server = ServerProcess(
        tmp_path,
        database_url=database_url,
        args=("--retention", "7d", "--retention-every", "0.5"),
    )
    try:
        wait_for(lambda: "retention: archived 6 event(s)" in server.output() or None)
        [segment] = (first.data_dir / "archive").glob("log-*.jsonl.gz")
        assert segment.stat().st_mode & 0o777 == 0o400
    finally:
        server.stop()

    store = PostgresStore(database_url)
    try:
        seen = [r for r in store.read() if r.stream == "worker-w1"]
        assert len(seen) == 1  # the fresh one; the month-old six are in the segment
        store.archive_anchor = str(first.data_dir.resolve() / "whirr.db")
        store.rebuild(full=True)  # through the segment
        assert _views(store) == before
    finally:
        store.close()
