"""End-to-end fixtures: a real ``whirr server`` over SQLite or PostgreSQL.

PostgreSQL needs ``WHIRR_TEST_POSTGRES_URL`` (see ``postgres_env``: skipped locally without
it, a failure under CI). Each server gets a schema of its own.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import pytest
from postgres_env import POSTGRES_URL_VAR, postgres_url_or_skip
from server_process import ServerProcess


def postgres_schema_url() -> tuple[str, str]:
    """A fresh schema in the test server's database: (store URL, schema name)."""
    import psycopg
    from psycopg import sql

    url = postgres_url_or_skip()
    name = f"e2e_{uuid.uuid4().hex[:16]}"
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE SCHEMA {}").format(sql.Identifier(name)))
    parts = urlsplit(url)
    query = [(k, v) for k, v in parse_qsl(parts.query) if k != "options"]
    query.append(("options", f"-csearch_path={name}"))
    return urlunsplit(parts._replace(query=urlencode(query))), name


def drop_schema(name: str) -> None:
    """Remove a schema ``postgres_schema_url`` made."""
    import psycopg
    from psycopg import sql

    with psycopg.connect(os.environ[POSTGRES_URL_VAR], autocommit=True) as conn:
        conn.execute(sql.SQL("DROP SCHEMA {} CASCADE").format(sql.Identifier(name)))


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def server(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[ServerProcess]:
    """A server over SQLite (under its data dir) or over a fresh PostgreSQL schema."""
    schema = None
    database_url = None
    if request.param == "postgres":
        database_url, schema = postgres_schema_url()
    proc = ServerProcess(tmp_path, database_url=database_url)
    yield proc
    proc.stop()
    if schema is not None:
        drop_schema(schema)
