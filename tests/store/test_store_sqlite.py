"""The store contract on SQLite (real files under tmp_path), plus its schema versioning."""

from __future__ import annotations

from pathlib import Path

import apsw
import pytest
from store_backends import Backend
from store_durable import DurableStoreContract
from store_support import seen

from whirr.store import StoreError, open_store
from whirr.store.sqlite import SCHEMA_VERSION, SQLiteStore


class TestSQLiteStore(DurableStoreContract):
    @pytest.fixture
    def backend(self, sqlite_backend: Backend) -> Backend:
        return sqlite_backend


def test_a_new_file_gets_the_current_schema_version(tmp_path: Path) -> None:
    store = SQLiteStore(str(tmp_path / "whirr.db"))
    try:
        assert store.schema_version() == SCHEMA_VERSION
    finally:
        store.close()


def test_reopening_keeps_the_version_and_the_data(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'whirr.db'}"
    first = open_store(url)
    first.append([seen("a")])
    first.close()
    second = open_store(url)
    try:
        assert second.head() == 1
        assert second.schema_version() == SCHEMA_VERSION  # type: ignore[attr-defined]
    finally:
        second.close()


def test_a_newer_schema_version_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "whirr.db"
    SQLiteStore(str(path)).close()
    conn = apsw.Connection(str(path))
    conn.execute(f"PRAGMA user_version={SCHEMA_VERSION + 1}")
    conn.close()
    with pytest.raises(StoreError, match="newer than this whirr"):
        SQLiteStore(str(path))


def test_a_corrupt_file_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "whirr.db"
    path.write_bytes(b"this is not a database, just bytes " * 200)
    with pytest.raises(StoreError, match="corrupt or not a whirr database"):
        SQLiteStore(str(path))
