"""How a PostgreSQL rebuild reads its log: the live rows, merged with the archive segments
retention moved liveness events into (``postgres/retention.py``) when some event after
the rebuild's start is archived; refused where a needed segment cannot be found."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from whirr.events import Recorded
from whirr.store import retention_segments as files
from whirr.store.postgres.records import recorded_rows
from whirr.store.postgres.schema import Q
from whirr.store.protocol import StoreError
from whirr.store.retention_history import History
from whirr.store.sql import load_queries

if TYPE_CHECKING:
    from whirr.store.postgres.views import Conn

#: The retention queries (``retention.sql``), shared with ``postgres/retention.py``.
R = load_queries("whirr.store.postgres", "retention.sql")


class _ConnLog:
    """The live log read on the rebuild's own connection (inside its transaction)."""

    def __init__(self, conn: Conn, anchor: str, batch: int) -> None:
        self.conn = conn
        self.path = anchor
        self.batch = batch

    def read(self, after: int = 0, limit: int | None = None) -> list[Recorded]:
        params = {"after": after, "limit": limit or self.batch, "types": None}
        return recorded_rows(list(self.conn.execute(Q["read_events"], params)))


def replay_reader(
    conn: Conn, anchor: str | None, start: int, batch: int
) -> Callable[[int], list[Recorded]]:
    """How a rebuild from ``start`` reads the log: the live rows, merged with the archive
    segments when some event after ``start`` is archived. Refused (``StoreError``) when a
    segment the replay needs is not there, or the data dir holding them is not known."""
    live = _ConnLog(conn, anchor or "", batch)
    exists = conn.execute(R["archive_segments_exist"]).fetchone()
    recorded: list[Any] = []
    if exists and exists[0]:
        recorded = list(conn.execute(R["archive_segments"]))
    needed = [name for name, _first, last in recorded if last > start]
    on_disk = files.segments(anchor) if anchor else []
    if not needed and not any(s.last > start for s in on_disk):
        return lambda after: live.read(after, batch)
    if anchor is None:
        raise StoreError(
            f"{len(needed)} archive segment(s) hold events of this log, in the data dir of "
            "the server that archived them: rebuild it there (whirr rebuild --server)"
        )
    have = {s.name.removesuffix(files.PENDING) for s in on_disk}
    missing = [name for name in needed if name not in have]
    if missing:
        raise StoreError(
            f"archive segment {missing[0]} (of {len(missing)} missing) is not in "
            f"{files.directory(anchor)}: a replay without it would miss events; put it back"
        )
    history = History(live)
    return lambda after: history.read(after, batch)
