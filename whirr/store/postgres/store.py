"""PostgreSQL event store (psycopg 3, connection pool): the log of server mode.

Why appends take one lock, and why it must be a transaction-level lock
-----------------------------------------------------------------------
Readers tail the log by position: a worker or an SSE stream remembers the last position
it saw and asks for ``position > after``. That is only correct if positions become
*visible* in position order. With a sequence (or ``MAX(position) + 1`` computed freely)
they need not: transaction A takes position 5, transaction B takes 6, B commits first; a
reader that runs between the two commits sees 6, moves its cursor to 6, and never sees 5
when A commits a moment later. The event is not lost from the table, but it is lost to
every tailing reader, which is worse: nobody notices.

So every write transaction first takes ``pg_advisory_xact_lock(append_lock)`` and only
then reads the head and numbers its events ``head + 1 ...``. A transaction-level
advisory lock is released by PostgreSQL at the very end of commit (or rollback), after
the commit became visible to other sessions. The next writer therefore cannot read the
head, let alone insert, until the previous writer's events are visible, so positions are
assigned and made visible in one total order, with no gaps (a rolled-back transaction
never consumed a number). A reader can see a prefix of the log, never a log with a hole.

Three details keep that true:

* The lock is taken in its own statement, and the head is read in a later one. Under
  READ COMMITTED each statement takes a fresh snapshot when it *starts*; a statement that
  both waited for the lock and read the head would read it in a snapshot taken before the
  wait, missing the commit it waited for. (For the same reason the transactions must not
  run at REPEATABLE READ or above: their snapshot would predate the lock.) Pipeline mode
  may send the two in one network message; they remain two statements, executed in turn.
* A session-level lock released with ``pg_advisory_unlock`` before COMMIT would reopen
  the window the lock closes; only the transaction-level form is released after the
  commit is visible.
* The views are folded and written in the same transaction, and ``decide`` (a claim, a
  heartbeat, a cancel) runs after the lock is taken, so every decision reads views that
  include every earlier event: two claims cannot both see a job as queued.

The cost is that writes to one log are serial: throughput is bounded by one transaction
at a time (a few round trips plus the commit's WAL flush). whirr's events are coarse
(a few per job, never metrics), so that bound is far above what a lab's queue needs; the
eventsourcing library makes the same trade with ``LOCK TABLE ... IN EXCLUSIVE MODE``. The
lock key is derived from the schema name, so separate whirr logs in one database do not
contend, and advisory locks are per database anyway.

``pg_notify`` is called inside the same transaction; PostgreSQL delivers it on commit
and drops it on rollback, so a listener is woken exactly when there is something new.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Any, TypeVar

import psycopg
from psycopg.conninfo import conninfo_to_dict
from psycopg_pool import ConnectionPool, PoolTimeout

from whirr.clock import utc_now
from whirr.events import Pending, Recorded, decode, encode, tag_of
from whirr.projections import PROJECTIONS, JobView, QueueView, RunView, WorkerView, fold
from whirr.store.postgres import schema
from whirr.store.postgres.listener import Listener
from whirr.store.postgres.schema import Q
from whirr.store.postgres.views import VIEW_TABLES, Conn, PgViews
from whirr.store.protocol import ConflictError, Decide, StoreError

T = TypeVar("T")
DEFAULT_POOL_SIZE = 8
CONNECT_TIMEOUT_S = 10


def describe(url: str) -> str:
    """``host:port/dbname`` of a connection URL, without user or password."""
    try:
        info = conninfo_to_dict(url)
    except psycopg.Error:
        return "the configured PostgreSQL server"
    return f"{info.get('host', 'localhost')}:{info.get('port', 5432)}/{info.get('dbname', '')}"


def _configure(conn: Conn) -> None:
    # UTC sessions, and a ceiling on how long a stalled client (SIGSTOPped, partitioned)
    # may sit in a transaction: it holds the append lock, so it would stall every writer.
    conn.execute(Q["configure_session"])


class PostgresStore:
    """The event log and its views in one PostgreSQL schema, over a connection pool."""

    def __init__(
        self,
        url: str,
        clock: Callable[[], datetime] = utc_now,
        *,
        pool_size: int = DEFAULT_POOL_SIZE,
    ) -> None:
        self.url = url
        self.where = describe(url)
        self._clock = clock
        try:
            with psycopg.connect(url, autocommit=True, connect_timeout=CONNECT_TIMEOUT_S) as conn:
                self.names = schema.migrate(conn)
        except psycopg.Error as exc:
            raise StoreError(f"cannot open the PostgreSQL store at {self.where}: {exc}") from exc
        self._pool: ConnectionPool[Conn] = ConnectionPool(
            url,
            min_size=1,
            max_size=pool_size,
            kwargs={"autocommit": True, "connect_timeout": CONNECT_TIMEOUT_S},
            configure=_configure,
            name="whirr",
            open=True,
        )
        self._listener: Listener | None = None
        self._listener_lock = threading.Lock()

    # -- connections and schema ---------------------------------------------
    def _with_conn(self, work: Callable[[Conn], T]) -> T:
        try:
            with self._pool.connection() as conn:
                return work(conn)
        except (psycopg.Error, PoolTimeout) as exc:
            raise StoreError(f"PostgreSQL store at {self.where}: {exc}") from exc

    def _read(self, work: Callable[[PgViews], T]) -> T:
        return self._with_conn(lambda conn: work(PgViews(conn)))

    def schema_version(self) -> int:
        """The newest schema version recorded in the database."""
        return self._with_conn(schema.schema_version)

    def close(self) -> None:
        with self._listener_lock:
            listener, self._listener = self._listener, None
        if listener is not None:
            listener.close(wake=self._wake_listener)
        self._pool.close()

    def _wake_listener(self, channel: str) -> None:
        self._with_conn(lambda conn: conn.execute(Q["notify"], {"channel": channel, "payload": ""}))

    # -- writing -------------------------------------------------------------
    def append(self, events: Sequence[Pending], expect: int | None = None) -> int:
        def decide(reader: Any) -> Sequence[Pending]:
            if expect is not None:
                head = reader.head()
                if head != expect:
                    raise ConflictError(expect, head)
            return events

        recorded = self.transact(decide)
        return recorded[-1].position if recorded else self.head()

    def transact(self, decide: Decide) -> list[Recorded]:
        def work(conn: Conn) -> list[Recorded]:
            # Pipeline mode: statements whose results are not needed yet (BEGIN, the lock,
            # the writes, COMMIT) travel with the next one that is, so an append costs two
            # round trips and a claim one more per read its decision makes.
            with conn.pipeline(), conn.transaction():
                # The append lock comes first, in a statement of its own: see the module
                # docstring for why positions then become visible in commit order.
                conn.execute(Q["advisory_xact_lock"], {"key": self.names.append_lock})
                reader = PgViews(conn, locking=True)
                pending = decide(reader)
                return self._insert(reader, pending) if pending else []

        return self._with_conn(work)

    def _insert(self, reader: PgViews, pending: Sequence[Pending]) -> list[Recorded]:
        conn = reader.conn
        now = self._clock()
        rows = [(p.stream, tag_of(p.event), now, encode(p.event).decode()) for p in pending]
        slots = list(
            dict.fromkeys(
                (projection.name, k)
                for p in pending
                for projection in PROJECTIONS
                if (k := projection.key(p.event)) is not None
            )
        )
        # The head (read after the lock: a later statement, so a fresh snapshot) and the
        # current views the events touch, fetched together in one round trip.
        head_cursor = conn.execute(Q["head"])
        current = reader.views_by_keys(slots)
        head_row = head_cursor.fetchone()
        head = int(head_row[0]) if head_row else 0
        recorded = [Recorded(head + i, now, p.stream, p.event) for i, p in enumerate(pending, 1)]
        view_rows = _fold_touched(current, recorded)
        # The writes are not waited for: they go with COMMIT, and any error they raise
        # surfaces there and rolls the whole transaction back.
        # (Plain ``execute`` per row: ``executemany`` would open a nested pipeline and wait
        # for its results, a round trip of its own.)
        with conn.cursor() as cur:
            for rec, row in zip(recorded, rows, strict=True):
                cur.execute(Q["insert_event"], (rec.position, *row))
            for name, table_rows in view_rows.items():
                for view_row in table_rows:
                    cur.execute(Q[VIEW_TABLES[name][0]], view_row)
            cur.execute(
                Q["notify"], {"channel": self.names.channel, "payload": str(recorded[-1].position)}
            )
        return recorded

    def rebuild(self) -> int:
        def work(conn: Conn) -> int:
            with conn.transaction():
                conn.execute(Q["advisory_xact_lock"], {"key": self.names.append_lock})
                records = [_recorded(row) for row in conn.execute(Q["all_events"])]
                views = fold(records)
                conn.execute(Q["clear_projections"])
                with conn.cursor() as cur:
                    for name, table in views.items():
                        _, copy_block, to_row = VIEW_TABLES[name]
                        with cur.copy(Q[copy_block]) as copy:
                            for view in table.values():
                                copy.write_row(to_row(view))
                return len(records)

        return self._with_conn(work)

    # -- the log -------------------------------------------------------------
    def head(self) -> int:
        return self._read(PgViews.head)

    def read(
        self,
        after: int = 0,
        limit: int | None = None,
        stream: str | None = None,
        types: Sequence[str] | None = None,
    ) -> list[Recorded]:
        params = {
            "after": after,
            "limit": limit,
            "stream": stream,
            "types": list(types) if types is not None else None,
        }
        query = Q["read_events"] if stream is None else Q["read_stream_events"]
        return self._with_conn(lambda conn: [_recorded(row) for row in conn.execute(query, params)])

    def wait(self, after: int, timeout: float) -> bool:
        with self._listener_lock:
            if self._listener is None:
                self._listener = Listener(self.url, self.names.channel)
            listener = self._listener
        return listener.wait(after, timeout, self.head)

    # -- views ---------------------------------------------------------------
    def job(self, job_id: int) -> JobView | None:
        return self._read(lambda v: v.job(job_id))

    def jobs(
        self, statuses: Sequence[str] | None = None, limit: int | None = None
    ) -> list[JobView]:
        return self._read(lambda v: v.jobs(statuses, limit))

    def claimable_jobs(self, limit: int, now: datetime | None = None) -> list[JobView]:
        return self._read(lambda v: v.claimable_jobs(limit, now))

    def expired_leases(self, now: datetime) -> list[JobView]:
        return self._read(lambda v: v.expired_leases(now))

    def job_counts(self) -> dict[str, int]:
        return self._read(PgViews.job_counts)

    def max_job_id(self) -> int:
        return self._read(PgViews.max_job_id)

    def run(self, run_id: str) -> RunView | None:
        return self._read(lambda v: v.run(run_id))

    def runs(
        self, status: str | None = None, tag: str | None = None, limit: int | None = None
    ) -> list[RunView]:
        return self._read(lambda v: v.runs(status, tag, limit))

    def runs_by_prefix(self, prefix: str, limit: int = 10) -> list[RunView]:
        return self._read(lambda v: v.runs_by_prefix(prefix, limit))

    def worker(self, worker_id: str) -> WorkerView | None:
        return self._read(lambda v: v.worker(worker_id))

    def workers(self) -> list[WorkerView]:
        return self._read(PgViews.workers)

    def queue_state(self) -> QueueView:
        return self._read(PgViews.queue_state)


def _fold_touched(
    current: dict[tuple[str, Any], Any], recorded: Sequence[Recorded]
) -> dict[str, list[tuple[Any, ...]]]:
    """Fold ``recorded`` into the ``current`` views they touch; the rows to write, per table."""
    touched = dict(current)
    changed: set[tuple[str, Any]] = set()
    for rec in recorded:
        for projection in PROJECTIONS:
            k = projection.key(rec.event)
            if k is None:
                continue
            slot = (projection.name, k)
            new = projection.apply(touched.get(slot), rec)
            if new is not None:
                touched[slot] = new
                changed.add(slot)
    by_table: dict[str, list[tuple[Any, ...]]] = {}
    for slot in touched:
        if slot in changed:
            by_table.setdefault(slot[0], []).append(VIEW_TABLES[slot[0]][2](touched[slot]))
    return by_table


def _recorded(row: tuple[Any, ...]) -> Recorded:
    position, recorded_at, stream, data = row
    return Recorded(int(position), recorded_at.astimezone(UTC), stream, decode(data))
