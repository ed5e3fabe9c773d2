"""The rebuild of a PostgreSQL store, from its checkpoint, and the checkpoint it leaves.

The checkpoint lives in the store's own schema: tables ``checkpoint_<view table>`` made
``LIKE`` the view tables, and a one-row ``checkpoint_stamp`` (the same ``Stamp`` as a
SQLite checkpoint file's: position, the folding code's fingerprint, the schema version,
digests of the events at positions 1 and P). It is written inside the rebuild's
transaction, so it exists whole or not at all.

A rebuild runs in one transaction under the append lock (writers wait for it; a
rebuild from a recent checkpoint replays few events): it restores the checkpoint's
views when the stamp is valid (else warns and starts from empty views), then streams
the events after it in batches of ``checkpoints.BATCH``, each batch folding into the
views it touches (read in one round trip, written in one statement), so memory is one
batch whatever the log's length. Then it writes the checkpoint at the head.
"""

from __future__ import annotations

import hashlib
from typing import Any

import msgspec

from whirr.projections import PROJECTIONS, fold_touched
from whirr.store import checkpoints
from whirr.store.checkpoints import Stamp
from whirr.store.guard import notice
from whirr.store.postgres.replay import replay_reader
from whirr.store.postgres.schema import SCHEMA_VERSION, Q
from whirr.store.postgres.views import VIEW_TABLES, Conn, PgViews, json_rows
from whirr.store.protocol import EventStore


def event_digest(conn: Conn, position: int) -> str:
    """A digest of the event at ``position`` (its time, type and text); "" for none."""
    row = conn.execute(Q["event_stamp"], (position,)).fetchone() if position > 0 else None
    if row is None:
        return ""
    at, kind, data = row
    return hashlib.sha256(f"{at.timestamp()!r}:{kind}:{data}".encode()).hexdigest()


def stamp_for(conn: Conn, position: int) -> Stamp:
    """The stamp of a checkpoint of the views at ``position``."""
    return Stamp(
        format=checkpoints.FORMAT,
        fingerprint=checkpoints.fingerprint(),
        schema=SCHEMA_VERSION,
        position=position,
        first=event_digest(conn, 1),
        last=event_digest(conn, position),
    )


def valid_start(conn: Conn, head: int) -> int | None:
    """The position of the schema's checkpoint when it may be trusted (None: there is
    none, or it may not, which is told in a warning)."""
    exists = conn.execute(Q["checkpoint_exists"]).fetchone()
    row = conn.execute(Q["checkpoint_stamp"]).fetchone() if exists and exists[0] else None
    if row is None:
        return None
    why: str | None
    try:
        stamp = msgspec.json.decode(row[0], type=Stamp)
    except msgspec.DecodeError:
        why = "its stamp does not decode"
    else:
        why = checkpoints.why_untrusted(
            stamp, SCHEMA_VERSION, head, lambda position: stamp_for(conn, position)
        )
        if why is None:
            return stamp.position
    checkpoints.warn(f"ignored the checkpoint in the database: {why}; replaying from the start")
    return None


def rebuild(store: EventStore, conn: Conn, append_lock: int, *, full: bool) -> int:
    """Replace the views (inside a transaction on ``conn``) by the checkpoint's plus the
    events after it (``full``: all events); returns the number of events replayed."""
    with conn.transaction():
        conn.execute(Q["advisory_xact_lock"], {"key": append_lock})
        views = PgViews(conn)
        head = views.head()
        start = None if full else valid_start(conn, head)
        conn.execute(Q["clear_projections"])
        if start is not None:
            conn.execute(Q["checkpoint_restore"])
        position = start or 0
        # The live rows, merged with the archive segments where retention moved some of
        # the events to replay (postgres/retention.py).
        read = replay_reader(conn, store_anchor(store), position, checkpoints.BATCH)
        while position < head:
            records = read(position)
            notice(store, records)
            _fold(views, records)
            position = records[-1].position
        # Writers that cache views (view_cache.py) must not trust them after this.
        conn.execute(Q["bump_views_epoch"])
        conn.execute(Q["checkpoint_write"])
        stamp = msgspec.json.encode(stamp_for(conn, head)).decode()
        conn.execute(Q["checkpoint_stamp_put"], (stamp,))
        return head - (start or 0)


def store_anchor(store: EventStore) -> str | None:
    """Where the store's archive segments live (``archive/`` beside it), if known."""
    anchor = getattr(store, "archive_anchor", None)
    return anchor if isinstance(anchor, str) else None


def _fold(views: PgViews, records: list[Any]) -> None:
    """Fold ``records`` into the views they touch: read together, written together."""
    slots = list(
        dict.fromkeys(
            (projection.name, k)
            for rec in records
            for projection in PROJECTIONS
            if (k := projection.key(rec.event)) is not None
        )
    )
    with views.conn.pipeline():  # the reads in one round trip
        known = views.views_by_keys(slots)
    changed = fold_touched(records, lambda name, key: known.get((name, key)))
    params = {"events": "[]"}
    for name, (columns, _, to_row) in VIEW_TABLES.items():
        rows = [to_row(view) for (table, _), view in changed.items() if table == name]
        params[name] = json_rows(columns, rows)
    views.conn.execute(Q["write_decision"], params)
