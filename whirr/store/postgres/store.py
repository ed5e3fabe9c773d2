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
  include every earlier event: two claims cannot both see a job as queued. (The writer
  answers some of those reads from views it cached; view_cache.py says why they are
  the same views.)

The cost is that writes to one log are serial: one transaction at a time, each holding
the lock across its COMMIT's WAL flush. So a store does not give each decision a
transaction of its own: its writer thread (writer.py) group-commits whatever decisions
are waiting, in one transaction under this same lock, and pays one flush per batch
instead of one per decision. The argument above holds for a batch as for
any transaction; writer.py explains the rest (and why not ``synchronous_commit = off``).
The eventsourcing library makes the same serial trade with ``LOCK TABLE ... IN EXCLUSIVE
MODE``. The lock key is derived from the schema name, so separate whirr logs in one
database do not contend, and advisory locks are per database anyway.

``pg_notify`` is called inside the same transaction (once per batch); PostgreSQL delivers
it on commit and drops it on rollback, so a listener is woken exactly when there is
something new.

Pooled connections that died (the server restarted) are noticed by the first read that
uses one: the pool then checks all its idle connections, replacing the dead ones, and the
read (idempotent) runs once more, so a restart costs no caller an error.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any, TypeVar

import psycopg
from psycopg.conninfo import conninfo_to_dict
from psycopg_pool import ConnectionPool, PoolTimeout

from whirr.clock import utc_now
from whirr.events import Pending, Recorded
from whirr.projections import JobView, QueueView, RunView, WorkerView
from whirr.store.guard import notice
from whirr.store.postgres import checkpoint, schema
from whirr.store.postgres.errors import read_error
from whirr.store.postgres.listener import Listener
from whirr.store.postgres.records import recorded_rows
from whirr.store.postgres.schema import Q
from whirr.store.postgres.views import Conn, PgViews
from whirr.store.postgres.writer import Writer
from whirr.store.protocol import ConflictError, Decide, StoreError
from whirr.store.runs_page import RunsPage, RunsPageResult

T = TypeVar("T")
DEFAULT_POOL_SIZE = 8
CONNECT_TIMEOUT_S = 10
#: Longest a read waits for a pooled connection. While PostgreSQL is down the pool has
#: none to give: a read then fails (503, and the caller retries) within this, instead of
#: holding a worker's heartbeat past the moment it must fence (psycopg_pool's default
#: is 30 s).
POOL_WAIT_S = 3.0


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
            raise read_error(self.where, exc, "cannot open the PostgreSQL store") from exc
        self._pool: ConnectionPool[Conn] = ConnectionPool(
            url,
            min_size=1,
            max_size=pool_size,
            kwargs={
                "autocommit": True,
                "connect_timeout": CONNECT_TIMEOUT_S,
                "application_name": "whirr",
            },
            configure=_configure,
            name="whirr",
            timeout=POOL_WAIT_S,
            open=True,
        )
        self._listener: Listener | None = None
        self._listener_lock = threading.Lock()
        # The writer thread starts with the first write: a store that only reads (most
        # CLI commands) never opens its connection.
        self._writer: Writer | None = None
        self._writer_lock = threading.Lock()
        self._closed = False
        #: ``DATA_DIR/whirr.db`` of the server whose log this is: its retention segments
        #: live in ``DATA_DIR/archive/`` (postgres/retention.py); None: not known here.
        self.archive_anchor: str | None = None

    # -- connections and schema ---------------------------------------------
    def _with_conn(self, work: Callable[[Conn], T]) -> T:
        """Run ``work`` (idempotent) on a pooled connection. A connection found dead (the
        server restarted since it was pooled) makes the pool check all its idle ones,
        and ``work`` runs once more on a live one."""
        try:
            for attempt in (1, 2):
                with self._pool.connection() as conn:
                    try:
                        return work(conn)
                    except psycopg.OperationalError:
                        if attempt == 2 or not conn.broken:
                            raise
                self._pool.check()
            raise AssertionError("unreachable")
        except (psycopg.Error, PoolTimeout) as exc:
            raise read_error(self.where, exc) from exc

    def _read(self, work: Callable[[PgViews], T]) -> T:
        return self._with_conn(lambda conn: work(PgViews(conn)))

    def schema_version(self) -> int:
        """The newest schema version recorded in the database."""
        return self._with_conn(schema.schema_version)

    def close(self) -> None:
        with self._writer_lock:
            writer, self._writer, self._closed = self._writer, None, True
        if writer is not None:
            writer.close()  # runs what is queued first
        with self._listener_lock:
            listener, self._listener = self._listener, None
        if listener is not None:
            listener.close(wake=self._wake_listener)
        self._pool.close()

    def _wake_listener(self, channel: str) -> None:
        self._with_conn(lambda conn: conn.execute(Q["notify"], {"channel": channel, "payload": ""}))

    # -- writing -------------------------------------------------------------
    def append(self, events: Sequence[Pending], expect: int | None = None) -> int:
        heads: list[int] = []

        def decide(reader: Any) -> Sequence[Pending]:
            heads.append(reader.head())  # known to a batch without a query
            if expect is not None and heads[-1] != expect:
                raise ConflictError(expect, heads[-1])
            return events

        recorded = self.transact(decide)
        return recorded[-1].position if recorded else heads[-1]

    def transact(self, decide: Decide) -> list[Recorded]:
        # Group commit: the decision joins the writer thread's next batch (writer.py).
        with self._writer_lock:
            if self._writer is None:
                if self._closed:
                    raise StoreError(f"PostgreSQL store at {self.where}: the store is closed")
                self._writer = Writer(self._connect_writer, self.names, self._clock, self.where)
            writer = self._writer
        return writer.transact(decide)

    def _connect_writer(self) -> Conn:
        conn: Conn = psycopg.connect(
            self.url,
            autocommit=True,
            connect_timeout=CONNECT_TIMEOUT_S,
            application_name="whirr-write",
        )
        _configure(conn)
        return conn

    def rebuild(self, full: bool = False) -> int:
        return self._with_conn(
            lambda conn: checkpoint.rebuild(self, conn, self.names.append_lock, full=full)
        )

    def checkpoint(self) -> int:
        """A rebuild from the checkpoint, which writes the next one: the views must be a
        replay, not the live rows taken on trust (checkpoint.py)."""
        self.rebuild()
        return self.head()

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
        rows = self._with_conn(lambda conn: list(conn.execute(query, params)))
        records = recorded_rows(rows, types)
        notice(self, records)
        return records

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
        self,
        status: str | None = None,
        tag: str | None = None,
        limit: int | None = None,
        archived: bool | None = None,
    ) -> list[RunView]:
        return self._read(lambda v: v.runs(status, tag, limit, archived))

    def runs_by_prefix(self, prefix: str, limit: int = 10) -> list[RunView]:
        return self._read(lambda v: v.runs_by_prefix(prefix, limit))

    def runs_page(self, page: RunsPage) -> RunsPageResult:
        return self._read(lambda v: v.runs_page(page))

    def run_status_counts(self, archived: bool | None = False) -> dict[str, int]:
        return self._read(lambda v: v.run_status_counts(archived))

    def worker(self, worker_id: str) -> WorkerView | None:
        return self._read(lambda v: v.worker(worker_id))

    def workers(self, heard_since: datetime | None = None) -> list[WorkerView]:
        return self._read(lambda views: views.workers(heard_since))

    def queue_state(self) -> QueueView:
        return self._read(PgViews.queue_state)
