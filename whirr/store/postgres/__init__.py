"""PostgreSQL (psycopg 3) backend: the event log of server mode."""

from whirr.store.postgres.schema import SCHEMA_VERSION
from whirr.store.postgres.store import PostgresStore

__all__ = ["SCHEMA_VERSION", "PostgresStore"]
