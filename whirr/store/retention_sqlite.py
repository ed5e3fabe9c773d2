"""A retention pass over a SQLite project (``retention_pass``, the order and why it is
safe): the live log is the ``events`` table of ``whirr.db``, segments go to
``archive/`` beside it, and a segment's rows leave in one short ``BEGIN IMMEDIATE``
transaction. The checkpoints kept are files (``checkpoints/``), and the events at their
positions stay live."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from datetime import datetime, timedelta

import msgspec

from whirr.projections import JobView
from whirr.store import retention_segments as files
from whirr.store.retention import DEFAULT_OLDER_THAN
from whirr.store.retention_pass import (
    CHUNK,
    PAGE,
    Busy,
    Progress,
    Report,
    Row,
    exclusive,
    run_pass,
)
from whirr.store.sql import load_queries
from whirr.store.sqlite.checkpoint import saved
from whirr.store.sqlite.store import SQLiteStore, write_error

__all__ = ["CHUNK", "PAGE", "Busy", "Progress", "Report", "archive", "live_counts"]

_Q = load_queries("whirr.store", "retention.sql")


class _Log:
    """A SQLite store's log, as a pass sees it."""

    def __init__(self, store: SQLiteStore) -> None:
        self.store = store
        self.path = store.path

    def head(self) -> int:
        return self.store.head()

    def checkpoint(self) -> int:
        return self.store.checkpoint()

    def kept(self) -> set[int]:
        return {position for position, _ in saved(self.store)}

    def candidates(self, after: int, below: int, cutoff_us: int, limit: int) -> list[Row]:
        params = {"after": after, "below": below, "cutoff": cutoff_us, "limit": limit}
        return self.store._query(_Q["liveness_candidates"], params)

    def job(self, job_id: int) -> JobView | None:
        return self.store.job(job_id)

    def remove(self, segment: files.Segment, positions: list[int]) -> None:
        store = self.store
        conn = store._conn()
        encoded = msgspec.json.encode(positions).decode()
        try:
            conn.execute("BEGIN IMMEDIATE")
            conn.execute(_Q["remove_archived"], {"positions": encoded})
            conn.execute("COMMIT")
        except BaseException as exc:
            with contextlib.suppress(Exception):
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
            import apsw

            if isinstance(exc, apsw.Error):
                raise write_error(store.path, exc) from exc
            raise

    def live_counts(self) -> tuple[int, int]:
        return live_counts(self.store)


@contextlib.contextmanager
def _exclusive(store: SQLiteStore) -> Iterator[None]:
    """The pass's lock on ``store``'s archive (a test holds it to see a pass refused)."""
    with exclusive(store.path):
        yield


def archive(
    store: SQLiteStore,
    *,
    older_than: timedelta = DEFAULT_OLDER_THAN,
    now: datetime | None = None,
    dry_run: bool = False,
    chunk: int = CHUNK,
    progress: Progress | None = None,
) -> Report:
    """Move the liveness events the policy lets go into archive segments (``dry_run``:
    count them, change nothing, take no checkpoint); returns what was done."""
    return run_pass(
        _Log(store),
        older_than=older_than,
        now=now,
        dry_run=dry_run,
        chunk=chunk,
        progress=progress,
    )


def live_counts(store: SQLiteStore) -> tuple[int, int]:
    """Events in the live log, and how many of them are liveness events."""
    counts = {bool(liveness): n for liveness, n in store._query(_Q["live_counts"])}
    return counts.get(False, 0) + counts.get(True, 0), counts.get(True, 0)
