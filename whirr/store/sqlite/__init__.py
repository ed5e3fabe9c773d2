"""SQLite (apsw, WAL) backend."""

from whirr.store.sqlite.store import SCHEMA_VERSION, SQLiteStore

__all__ = ["SCHEMA_VERSION", "SQLiteStore"]
