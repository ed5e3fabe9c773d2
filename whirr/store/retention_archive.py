"""A retention pass over whichever backend holds a log: SQLite (``retention_sqlite``) or
PostgreSQL (``postgres.retention``, whose store knows its data dir: ``archive_anchor``).
What a server's schedule (``whirr server --retention``) calls."""

from __future__ import annotations

from typing import Any

from whirr.store.retention_pass import Report


def archive(store: Any, **options: Any) -> Report:
    """``retention_pass.run_pass`` over ``store``'s log (the options are its own)."""
    from whirr.store.sqlite.store import SQLiteStore

    if isinstance(store, SQLiteStore):
        from whirr.store import retention_sqlite

        return retention_sqlite.archive(store, **options)
    from whirr.store.postgres.retention import archive as archive_postgres

    return archive_postgres(store, **options)
