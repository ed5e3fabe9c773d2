"""Retention of a PostgreSQL log (``whirr.store.retention_pass``: the order and why it is
safe). The segments go to the server's ``DATA_DIR/archive/`` (the store's
``archive_anchor`` names ``DATA_DIR/whirr.db``, the place a SQLite log would be: segments
live beside it either way). A segment's rows leave in one transaction, under the append
lock, that also records the segment in ``archive_segments``: a replay then knows which
files it needs, and refuses (rather than folding a log with holes) where one is missing
or the data dir is not known.

The checkpoint a pass covers its events with is the store's one (``checkpoint_*``
tables, written by the rebuild the pass starts with), at the head P; the events at 1 and
P, which its stamp names, are never below P's walk (1 is kept, P is its bound).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

from whirr.projections import JobView
from whirr.store import retention_segments as files
from whirr.store.postgres.replay import R
from whirr.store.postgres.schema import Q
from whirr.store.protocol import StoreError
from whirr.store.retention import DEFAULT_OLDER_THAN
from whirr.store.retention_pass import CHUNK, Progress, Report, Row, run_pass

if TYPE_CHECKING:
    from whirr.store.postgres.store import PostgresStore
    from whirr.store.postgres.views import Conn


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def _us(at: datetime) -> int:
    delta = at - _EPOCH
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


class _Log:
    """A PostgreSQL store's log, as a pass sees it."""

    def __init__(self, store: PostgresStore, anchor: str) -> None:
        self.store = store
        self.path = anchor

    def head(self) -> int:
        return self.store.head()

    def checkpoint(self) -> int:
        return self.store.checkpoint()

    def kept(self) -> set[int]:
        return set()  # the one checkpoint is the pass's own, at the bound of its walk

    def candidates(self, after: int, below: int, cutoff_us: int, limit: int) -> list[Row]:
        params = {
            "after": after,
            "below": below,
            "cutoff": _EPOCH + timedelta(microseconds=cutoff_us),
            "limit": limit,
        }
        rows = self.store._with_conn(
            lambda conn: list(conn.execute(R["liveness_candidates"], params))
        )
        return [(p, _us(at), s, t, d.encode()) for p, at, s, t, d in rows]

    def job(self, job_id: int) -> JobView | None:
        return self.store.job(job_id)

    def remove(self, segment: files.Segment, positions: list[int]) -> None:
        name = segment.name.removesuffix(files.PENDING)
        lock = self.store.names.append_lock

        def work(conn: Conn) -> None:
            with conn.transaction():
                conn.execute(Q["advisory_xact_lock"], {"key": lock})
                conn.execute(R["create_archive_segments"])
                conn.execute(R["remove_archived"], {"positions": positions})
                conn.execute(
                    R["record_segment"],
                    {"name": name, "first": segment.first, "last": segment.last},
                )

        self.store._with_conn(work)

    def live_counts(self) -> tuple[int, int]:
        rows = self.store._with_conn(lambda conn: list(conn.execute(R["live_counts"])))
        counts = {bool(liveness): int(n) for liveness, n in rows}
        return counts.get(False, 0) + counts.get(True, 0), counts.get(True, 0)


def archive(
    store: PostgresStore,
    *,
    older_than: timedelta = DEFAULT_OLDER_THAN,
    now: datetime | None = None,
    dry_run: bool = False,
    chunk: int = CHUNK,
    progress: Progress | None = None,
) -> Report:
    """Move the liveness events the policy lets go into segments in the data dir."""
    anchor = store.archive_anchor
    if anchor is None:
        raise StoreError(
            f"PostgreSQL store at {store.where}: no data dir to keep archive segments in "
            "(a server archives its log: whirr server -d DATA_DIR --retention 7d)"
        )
    return run_pass(
        _Log(store, anchor),
        older_than=older_than,
        now=now,
        dry_run=dry_run,
        chunk=chunk,
        progress=progress,
    )
