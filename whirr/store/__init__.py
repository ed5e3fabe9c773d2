"""Event stores: memory, SQLite (embedded default) and PostgreSQL (server mode)."""

from __future__ import annotations

from whirr.store.protocol import ConflictError, EventStore, StoreError, StoreWriteError, ViewReader


def open_store(url: str) -> EventStore:
    """Open the store a URL names: ``sqlite:///path``, ``postgresql://...`` or ``memory://``."""
    if url.startswith("sqlite:///"):
        from whirr.store.sqlite import SQLiteStore

        return SQLiteStore(url.removeprefix("sqlite://"))
    if url.startswith(("postgresql://", "postgres://")):
        from whirr.store.postgres import PostgresStore

        return PostgresStore(url)
    if url == "memory://":
        from whirr.store.memory import MemoryStore

        return MemoryStore()
    raise StoreError(
        f"unsupported store URL {url!r} (use sqlite:///..., postgresql://... or memory://)"
    )


__all__ = [
    "ConflictError",
    "EventStore",
    "StoreError",
    "StoreWriteError",
    "ViewReader",
    "open_store",
]
