"""Schema versions of the PostgreSQL backend, and the names one whirr schema uses.

Migrations are numbered ``migrate_v<N>`` blocks in ``queries.sql``; ``schema_version``
records each one applied. Opening a store applies the missing ones under an advisory lock,
so processes that start together do not race to create the same tables.
"""

from __future__ import annotations

import hashlib

import msgspec
import psycopg

from whirr.store.protocol import StoreError
from whirr.store.sql import load_queries

SCHEMA_VERSION = 4
Q = load_queries("whirr.store.postgres", "queries.sql")


class Names(msgspec.Struct, frozen=True):
    """What a store in one PostgreSQL schema locks and notifies on.

    Both derive from the schema name, so two whirr logs in different schemas of one
    database neither block each other's appends nor wake each other's waiters.
    """

    schema: str
    append_lock: int
    migrate_lock: int
    channel: str


def names_for(schema: str) -> Names:
    """The lock keys and notification channel of the whirr log in ``schema``."""
    digest = hashlib.blake2b(schema.encode(), digest_size=16).digest()
    return Names(
        schema=schema,
        append_lock=int.from_bytes(digest[:8], "big", signed=True),
        migrate_lock=int.from_bytes(digest[8:], "big", signed=True),
        # A channel is an identifier (at most 63 bytes): a fixed prefix and a hash fit.
        channel="whirr_events_" + digest[:8].hex(),
    )


def migrate(conn: psycopg.Connection[tuple[object, ...]]) -> Names:
    """Bring the schema ``conn`` works in up to ``SCHEMA_VERSION``; returns its names.

    Raises ``StoreError`` when the database was written by a newer whirr.
    """
    row = conn.execute(Q["current_schema"]).fetchone()
    if row is None or row[0] is None:
        raise StoreError(
            "no schema to create whirr's tables in: the search_path names none that exists"
        )
    names = names_for(str(row[0]))
    if _version_or_zero(conn) == SCHEMA_VERSION:
        # Up to date: nothing to lock or create. Reads only, so that a read-only database
        # (default_transaction_read_only, a standby) still opens for reading.
        return names
    with conn.transaction():
        conn.execute(Q["advisory_xact_lock"], {"key": names.migrate_lock})
        conn.execute(Q["create_schema_version"])
        found = conn.execute(Q["schema_version"]).fetchone()
        version = int(found[0]) if found else 0  # type: ignore[call-overload]
        if version > SCHEMA_VERSION:
            raise StoreError(
                f"the database has whirr schema version {version}, newer than this whirr "
                f"understands ({SCHEMA_VERSION}); upgrade whirr"
            )
        for target in range(version + 1, SCHEMA_VERSION + 1):
            conn.execute(Q[f"migrate_v{target}"])
            conn.execute(Q["record_version"], {"version": target})
    return names


def _version_or_zero(conn: psycopg.Connection[tuple[object, ...]]) -> int:
    """The recorded schema version; 0 when there is no version table yet (in autocommit,
    so the failed read leaves no aborted transaction behind)."""
    try:
        return schema_version(conn)
    except psycopg.errors.UndefinedTable:
        return 0


def schema_version(conn: psycopg.Connection[tuple[object, ...]]) -> int:
    """The newest schema version recorded in the database."""
    row = conn.execute(Q["schema_version"]).fetchone()
    return int(row[0]) if row else 0  # type: ignore[call-overload]
