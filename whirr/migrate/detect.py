"""Telling a database written by the original whirr (0.5.3) from this whirr's log."""

from __future__ import annotations

import os
from typing import Any

from whirr.store.protocol import StoreError
from whirr.store.sql import load_queries


class OriginalProject(StoreError):
    """The database is the original whirr 0.5.3's: nothing but ``whirr migrate`` uses it."""

    def __init__(self, path: str) -> None:
        folder = os.path.dirname(path)
        # A project's is .whirr/whirr.db; a server's data dir holds whirr.db itself.
        command = (
            "whirr migrate"
            if os.path.basename(folder) == ".whirr"
            else (f"whirr migrate -d {folder}")
        )
        super().__init__(
            f"{path} was written by the original whirr 0.5.3: run `{command}` to convert it "
            "(the original database is backed up first)"
        )


def queries() -> dict[str, str]:
    """The queries over an original database (loaded on first use)."""
    global _QUERIES
    if _QUERIES is None:
        _QUERIES = load_queries("whirr.migrate", "original.sql")
    return _QUERIES


_QUERIES: dict[str, str] | None = None


def is_original(conn: Any) -> bool:
    """True when the apsw connection ``conn`` holds the original's tables (and not this
    whirr's log). Reads the schema only."""
    q = queries()
    found = conn.execute(q["is_original"]).fetchall()[0][0]
    return bool(found) and not conn.execute(q["has_events"]).fetchall()[0][0]
