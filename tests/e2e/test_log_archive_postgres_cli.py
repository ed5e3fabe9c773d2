"""``whirr log archive -d DATA_DIR`` and ``whirr log segments -d DATA_DIR`` where the
data dir's server keeps its log in PostgreSQL: with the server's database URL
(``--database-url`` or ``WHIRR_DATABASE_URL``, as ``whirr server`` takes it) they archive
into and list ``DATA_DIR/archive``, as the server's ``--retention`` does, and ``whirr
events --server`` says where the archived range went; without the URL, a one-line error
that names the option (not "whirr.db is missing, start over")."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import psycopg
import pytest
from cli_runner import run_cli
from postgres_env import postgres_url_or_skip
from psycopg import sql
from server_process import ServerProcess
from server_process import run_cli as run_server_cli

from whirr.clock import utc_now
from whirr.services import Workers
from whirr.store.postgres import PostgresStore

#: The CLI runs without the server's URL in its environment unless a test gives it.
NO_URL = {"WHIRR_DATABASE_URL": ""}


def _schema(base: str) -> tuple[str, str]:
    """A fresh schema of the test database: (store URL working in it, its name)."""
    name = f"t_{uuid.uuid4().hex[:16]}"
    with psycopg.connect(base, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE SCHEMA {}").format(sql.Identifier(name)))
    parts = urlsplit(base)
    query = [(k, v) for k, v in parse_qsl(parts.query) if k != "options"]
    query.append(("options", f"-csearch_path={name}"))
    return urlunsplit(parts._replace(query=urlencode(query))), name


@pytest.fixture
def database_urls() -> Iterator[tuple[str, str]]:
    """Two store URLs, each in a fresh schema of the test database (dropped after)."""
    base = postgres_url_or_skip()
    made = [_schema(base), _schema(base)]
    yield made[0][0], made[1][0]
    with psycopg.connect(base, autocommit=True) as conn:
        for _, name in made:
            conn.execute(sql.SQL("DROP SCHEMA {} CASCADE").format(sql.Identifier(name)))


def _views(store: PostgresStore) -> tuple[object, ...]:
    return (store.head(), store.workers(), store.jobs(), store.queue_state())


def _month_old_liveness(url: str) -> tuple[object, ...]:
    """Six worker.seen events 30 days old, then a fresh one; the views they give."""
    past = utc_now() - timedelta(days=30)
    store = PostgresStore(url, clock=lambda: past)
    try:
        for _ in range(6):
            Workers(store).seen("w1")
    finally:
        store.close()
    fresh = PostgresStore(url)
    try:
        Workers(fresh).seen("w1")
        fresh.rebuild(full=True)
        return _views(fresh)
    finally:
        fresh.close()


@pytest.mark.postgres
def test_log_archive_and_segments_on_a_postgresql_data_dir(
    tmp_path: Path, database_urls: tuple[str, str]
) -> None:
    url, other = database_urls
    ServerProcess(tmp_path, database_url=url).stop()  # the schema, the data dir's project-id
    data = tmp_path / "data"
    before = _month_old_liveness(url)

    # Without the URL: one line naming what to do, and no SQLite log made in the data dir.
    for command in (("log", "archive"), ("log", "segments")):
        blind = run_cli(*command, "-d", str(data), cwd=tmp_path, env=NO_URL)
        assert blind.returncode == 1, blind.stderr
        [line] = blind.stderr.splitlines()
        assert line.startswith("Error: ") and "--database-url" in line, line
        assert "WHIRR_DATABASE_URL" in line
        assert not (data / "whirr.db").exists()

    # Another database than the data dir's: refused, loudly, nothing archived.
    wrong = run_cli("log", "archive", "-d", str(data), "--database-url", other, cwd=tmp_path)
    assert wrong.returncode == 1 and "Traceback" not in wrong.stderr
    assert "history is not in the database" in wrong.stderr
    assert not list((data / "archive").glob("log-*"))

    dry = run_cli(
        "log", "archive", "-d", str(data), "--database-url", url, "--dry-run", "--json",
        cwd=tmp_path, env=NO_URL, check=True,
    )  # fmt: skip
    assert json.loads(dry.stdout)["archived"] == 6
    done = run_cli(
        "log", "archive", "-d", str(data), "--database-url", url, cwd=tmp_path, check=True
    )
    assert done.stdout.startswith("Archived 6 event(s) (6 worker.seen) into 1 segment(s)")
    assert str(data / "archive") in done.stdout
    [segment] = (data / "archive").glob("log-*.jsonl.gz")
    assert segment.stat().st_mode & 0o777 == 0o400
    assert not (data / "whirr.db").exists()

    # The server's environment variable does as well as the option.
    listed = run_cli(
        "log", "segments", "-d", str(data), "--json",
        cwd=tmp_path, env={"WHIRR_DATABASE_URL": url}, check=True,
    )  # fmt: skip
    [row] = [json.loads(line) for line in listed.stdout.splitlines()]
    assert row["path"] == str(segment) and not row["pending"]

    store = PostgresStore(url)
    try:
        assert [r.stream for r in store.read()].count("worker-w1") == 1  # the fresh one
        store.archive_anchor = str(data.resolve() / "whirr.db")
        store.rebuild(full=True)  # reads the segment back
        assert _views(store) == before
    finally:
        store.close()
    again = run_cli(
        "log", "archive", "-d", str(data), "--json", cwd=tmp_path,
        env={"WHIRR_DATABASE_URL": url}, check=True,
    )  # fmt: skip
    assert json.loads(again.stdout)["archived"] == 0

    # The server says where the archived range went, as a project's `whirr events` does.
    server = ServerProcess(tmp_path, database_url=url)
    try:
        with server.http() as http:
            archive = http.get("/log/archive").json()
        assert archive["directory"] == str(data.resolve() / "archive")
        assert [s["path"] for s in archive["segments"]] == [str(segment.resolve())]
        listed = run_server_cli("events", "-n", "1000", server=server, cwd=tmp_path)
        assert listed.returncode == 0, listed.stderr
        assert "worker.seen" in listed.stdout
        assert f"are archived in 1 segment(s) in {data.resolve() / 'archive'}" in listed.stderr
        assert "whirr log segments -d DATA_DIR" in listed.stderr
    finally:
        server.stop()


def test_database_url_without_a_data_dir_is_a_usage_error(tmp_path: Path) -> None:
    run_cli("init", cwd=tmp_path, check=True)
    alone = run_cli(
        "log", "archive", "--database-url", "postgresql://x@127.0.0.1:9/x", cwd=tmp_path
    )
    assert alone.returncode == 2 and "--data-dir" in alone.stderr
    # The server's variable in the environment does not redirect a project's own archive.
    local = run_cli(
        "log", "archive", "--dry-run", "--json", cwd=tmp_path,
        env={"WHIRR_DATABASE_URL": "postgresql://x@127.0.0.1:9/x"}, check=True,
    )  # fmt: skip
    assert json.loads(local.stdout)["archived"] == 0
