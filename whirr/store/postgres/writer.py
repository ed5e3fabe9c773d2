"""Group commit: one writer thread per PostgreSQL store runs every decision, many per
transaction.

Why
---
Every write transaction holds the append lock (see store.py) until its COMMIT, and a
COMMIT returns only once its WAL record is flushed to disk (a few milliseconds on this
machine, often more on network storage). One decision per transaction therefore caps a
log at one decision per flush, however many threads or processes write: the writes are
serial by design, and each would pay the flush alone.

So ``transact`` does not open a transaction of its own. It queues its decision for this
store's writer thread and waits on a future. The writer takes everything queued (up to
``MAX_BATCH``), opens ONE transaction, takes the append lock, and runs the decisions one
after another:

* a decision that raises (``LeaseLost``, ``ConflictError``, a bug, even a
  ``BaseException``) changes nothing, and its caller gets the exception; the other
  decisions of the batch stand;
* each decision reads the views (and the head) as the decisions before it left them,
  since they run in the same transaction: two claims in one batch cannot hand out one job,
  and an ``append(expect=...)`` sees the head the earlier appends of its batch made;
* then one ``pg_notify`` and one COMMIT (one flush) for the whole batch, and only after
  the COMMIT returned are the futures resolved. When ``transact`` returns, its events are
  durable, exactly as with a transaction of its own.

Why a decision that raises needs no SAVEPOINT to be undone: it never wrote anything. A
decision only reads; what it returns is written afterwards in ONE statement
(``write_decision``: its events and the view rows they change, as JSON), and a statement
is atomic by itself. Everything that can go wrong on the client (an event that does not
encode, a value the driver refuses) goes wrong before that statement is sent; what goes
wrong on the server aborts the whole transaction (below). Savepoints would add two
commands per decision to the time the batch holds the lock, and past 64 of them in one
transaction PostgreSQL's per-session cache of subtransaction ids overflows, after which
every other session's visibility checks consult ``pg_subtrans``: a known way to slow a
whole database down.

The ordering guarantees are unchanged: a batch is one transaction under the
transaction-level append lock, so its events are numbered from the head read after the
lock and become visible together, atomically, before the next writer (another process's
store, or this writer's next batch) can read the head. A tailing reader sees the log grow
by whole batches, never with a hole.

Batching costs a lone caller nothing (a decision found alone is a batch of one, started at
once; nothing waits to fill a batch) and helps exactly when it is needed: while one batch
commits, the next one gathers. Decisions queued while a batch is still deciding join it
(up to ``MAX_BATCH``) instead of waiting for its COMMIT and then for the next batch's lock
and head: with the API server's 16 HTTP workers that took the claim + complete cycles from
about 280 to about 340 per second on the shared 2-core machine (medians of three, paired
runs). The API server's writer threads are what fill batches.

Why not ``synchronous_commit = off``: it would buy throughput by letting COMMIT return
before the flush, so a crash of the database server could lose commits that
callers had been told succeeded (a claim handed to a worker that then runs a job the log
never heard of). Group commit keeps every COMMIT durable and shares the flush instead.

Round trips
-----------
The batch holds the lock while it waits for the server, so waits are what it saves on.
Pipeline mode sends every statement whose result is not needed yet with the next one
whose result is: a batch waits once for the lock and the head, once for the COMMIT (sent
with the last writes), and once per read its decisions make that the view cache
(view_cache.py) cannot answer; on the API server's claim + complete path that is one per
batch (the claim candidates, which the batch's claims share: claim_window.py) and none
per completion. Each decision's writes are one statement, never waited for. psycopg
prepares a statement after a few executions, and the writer's connection is its own for
as long as it lives, so its statements stay prepared. (A claim's candidates come from a
SQL function that walks the claim index in order whatever the planner's statistics say;
``migrate_v3`` in queries.sql says why.)

Failures
--------
* Before any decision ran (the server restarted, so the connection is dead when the batch
  starts): nothing ran and nothing was committed, so the writer reconnects and tries the
  batch once more.
* A database error in the middle of a batch (a lost connection; a statement the server
  refused, which in pipeline mode may surface during a later decision): the transaction
  is rolled back, and every caller of the batch gets a ``StoreError`` saying nothing was
  committed. Decisions are not run again behind their callers' backs: a decision may note
  what it saw for its caller (``Jobs.cancel`` does).
* The COMMIT fails: every caller gets a ``StoreError`` (if the connection was lost during
  the COMMIT, whether it took effect is unknown, as for any client of any database).

A caller interrupted while waiting (Ctrl-C) withdraws its decision if the writer has not
started it yet; otherwise the decision runs and commits without it, as a transaction whose
COMMIT had already been sent would.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from datetime import datetime
from typing import Any

import psycopg

from whirr.events import Pending, Recorded, tag_of
from whirr.projections import PROJECTIONS, fold_touched
from whirr.store.guard import encode_for_append
from whirr.store.postgres.claim_window import ClaimWindow
from whirr.store.postgres.errors import outside_cause, write_error
from whirr.store.postgres.schema import Names, Q
from whirr.store.postgres.view_cache import BatchViews, Slot, ViewCache
from whirr.store.postgres.views import EVENT_COLUMNS, VIEW_TABLES, Conn, json_rows
from whirr.store.protocol import Decide, StoreError

#: Most decisions in one transaction: bounds the time a batch holds the append lock.
MAX_BATCH = 64

#: What a decision came to: its records, or what it raised.
Outcome = list[Recorded] | BaseException


class _Request:
    """One queued decision and the future its caller waits on."""

    __slots__ = ("decide", "future")

    def __init__(self, decide: Decide) -> None:
        self.decide = decide
        self.future: Future[list[Recorded]] = Future()


class _BatchFailed(Exception):
    """The batch's transaction failed: ``ran`` when any decision had run, ``committing``
    when the failure came with the COMMIT, ``lost`` when the connection died."""

    def __init__(self, cause: BaseException, *, ran: bool, committing: bool, lost: bool) -> None:
        super().__init__(str(cause))
        self.cause = cause
        self.ran = ran
        self.committing = committing
        self.lost = lost


class Writer:
    """The writer thread of one store: queues decisions and group-commits them."""

    def __init__(
        self,
        connect: Callable[[], Conn],
        names: Names,
        clock: Callable[[], datetime],
        where: str,
    ) -> None:
        self._connect = connect
        self._names = names
        self._clock = clock
        self._where = where
        self._conn: Conn | None = None
        self._cache = ViewCache()
        self._queue: queue.SimpleQueue[_Request | None] = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._closed = False
        self._stopping = False  # the writer thread saw close()'s sentinel
        self._thread = threading.Thread(target=self._run, name="whirr-pg-writer", daemon=True)
        self._thread.start()

    # -- the callers' side ---------------------------------------------------
    def transact(self, decide: Decide) -> list[Recorded]:
        """Queue ``decide`` for the next batch; its records once the batch committed."""
        if threading.current_thread() is self._thread:
            # A decision that starts a transaction would wait for its own batch forever.
            raise StoreError("a decision cannot start another transaction on its store")
        request = _Request(decide)
        with self._lock:
            if self._closed:
                raise StoreError(f"PostgreSQL store at {self._where}: the store is closed")
            self._queue.put(request)
        try:
            return request.future.result()
        except BaseException:
            # Interrupted while waiting: withdraw the decision if it has not started
            # (a no-op when it has, or when this is the decision's own exception).
            request.future.cancel()
            raise

    def close(self) -> None:
        """Run what is queued, then stop the thread and close the connection."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            self._queue.put(None)
        self._thread.join()

    # -- the writer thread ---------------------------------------------------
    def _run(self) -> None:
        while not self._stopping:
            first = self._queue.get()
            if first is None:
                break
            batch = [first] if first.future.set_running_or_notify_cancel() else []
            self._join_queued(batch)
            if batch:
                self._settle(batch)
        if self._conn is not None:
            self._conn.close()

    def _join_queued(self, batch: list[_Request]) -> None:
        """Add what is queued to ``batch`` (up to ``MAX_BATCH``), leaving out withdrawn
        decisions; close()'s sentinel ends the thread after this batch."""
        while len(batch) < MAX_BATCH and not self._stopping:
            try:
                item = self._queue.get_nowait()
            except queue.Empty:
                return
            if item is None:
                self._stopping = True
            elif item.future.set_running_or_notify_cancel():
                batch.append(item)

    def _settle(self, batch: list[_Request]) -> None:
        """Run and commit one batch, then resolve every future in it."""
        try:
            try:
                outcomes = self._attempt(batch)
            except _BatchFailed as failure:
                if failure.ran or not failure.lost:
                    raise
                outcomes = self._attempt(batch)  # nothing ran: again on a new connection
        except _BatchFailed as failure:
            self._cache.failed()
            error = self._failure(failure)
            for request in batch:
                request.future.set_exception(error)
            return
        except BaseException as exc:  # nothing may kill the thread with callers waiting
            self._cache.failed()
            for request in batch:
                request.future.set_exception(exc)
            return
        for request, outcome in zip(batch, outcomes, strict=True):
            if isinstance(outcome, BaseException):
                request.future.set_exception(outcome)
            else:
                request.future.set_result(outcome)

    def _failure(self, failure: _BatchFailed) -> StoreError:
        cause = failure.cause
        if isinstance(cause, StoreError):
            return cause
        if failure.committing and failure.lost:
            what = "the connection was lost during COMMIT; the batch may or may not be recorded"
        else:
            what = "nothing was committed"
        return write_error(self._where, cause, what)  # one line; StoreWriteError: outside

    def _connection(self) -> Conn:
        if self._conn is None or self._conn.closed:
            try:
                self._conn = self._connect()
            except psycopg.Error as exc:
                raise write_error(self._where, exc, "nothing was committed") from exc
        return self._conn

    def _attempt(self, batch: list[_Request]) -> list[Outcome]:
        """One transaction for the whole batch; raises ``_BatchFailed`` when it failed."""
        ran = committing = False
        outcomes: list[Outcome] = []
        conn: Conn | None = None
        try:
            conn = self._connection()
            # Pipeline mode: statements whose results are not needed yet travel with the
            # next one whose result is. A batch waits for the server for the head, for
            # each read its decisions make that the cache cannot answer, and for the
            # COMMIT, sent with the writes when the pipeline ends. (BEGIN and COMMIT are
            # plain statements: psycopg's ``transaction()`` syncs the pipeline on entry
            # and on exit, three more waits per batch.)
            with conn.pipeline():
                conn.execute(Q["begin"])
                # The lock first, in a statement of its own (store.py says why), then the
                # head in a later statement, so its snapshot includes the last commit.
                conn.execute(Q["advisory_xact_lock"], {"key": self._names.append_lock})
                row = conn.execute(Q["batch_start"]).fetchone()
                first, epoch = (int(row[0]), int(row[1])) if row else (0, 0)
                known = self._cache.start((first, epoch))
                window = ClaimWindow()  # the batch's claims share one candidate read
                head = first
                done = 0
                while done < len(batch):
                    ran = True
                    outcome = self._decide(conn, batch[done].decide, head, known, window)
                    if not isinstance(outcome, BaseException):
                        head += len(outcome)
                    outcomes.append(outcome)
                    done += 1
                    if done == len(batch):
                        # Decisions queued while this batch decided join it rather than
                        # wait for its COMMIT and the next batch's lock and head. (Only
                        # once a decision ran: a batch retried on a new connection, which
                        # nothing ran yet, is the same batch.)
                        self._join_queued(batch)
                if head > first:  # delivered on commit: one wake-up per batch
                    notice = {"channel": self._names.channel, "payload": str(head)}
                    conn.execute(Q["notify"], notice)
                conn.execute(Q["commit"])
                committing = True
        except BaseException as exc:
            lost = conn is None or conn.closed
            self._roll_back(conn)
            if conn is not None and outside_cause(exc) is not None:
                # A session keeps what it began with (default_transaction_read_only, ...):
                # the next batch connects afresh, so a fixed cause is seen fixed.
                conn.close()
            if isinstance(exc, _BatchFailed):
                raise
            if isinstance(exc, psycopg.Error | StoreError):
                raise _BatchFailed(exc, ran=ran, committing=committing, lost=lost) from exc
            raise
        self._cache.committed((head, epoch))
        return outcomes

    def _roll_back(self, conn: Conn | None) -> None:
        """End a failed batch's transaction, if the connection still has one."""
        if conn is None or conn.closed:
            return
        try:
            conn.execute(Q["rollback"])
        except psycopg.Error:
            conn.close()  # beyond repair: the next batch connects afresh

    def _decide(
        self, conn: Conn, decide: Decide, head: int, known: dict[Slot, Any], window: ClaimWindow
    ) -> Outcome:
        """Run one decision and queue its writes: its records, or what it raised (having
        written nothing). Raises ``_BatchFailed`` when the transaction itself failed."""
        try:
            reader = BatchViews(conn, head, known, window)
            pending = decide(reader)
            return self._write(reader, head, pending) if pending else []
        except BaseException as exc:
            if conn.closed or _server_error(exc):
                raise _BatchFailed(exc, ran=True, committing=False, lost=conn.closed) from exc
            if isinstance(exc, psycopg.Error):  # refused on the client side (a NUL byte)
                error = StoreError(f"PostgreSQL store at {self._where}: {exc}")
                error.__cause__ = exc
                return error
            return exc

    def _write(self, reader: BatchViews, head: int, pending: Sequence[Pending]) -> list[Recorded]:
        """Number ``pending`` from ``head``, fold them into the views they touch, and queue
        ONE statement writing both (the decision's only write)."""
        now = self._clock()
        events = [
            (head + i, p.stream, tag_of(p.event), now, encode_for_append(p.event).decode())
            for i, p in enumerate(pending, 1)
        ]
        recorded = [Recorded(head + i, now, p.stream, p.event) for i, p in enumerate(pending, 1)]
        slots = list(
            dict.fromkeys(
                (projection.name, k)
                for p in pending
                for projection in PROJECTIONS
                if (k := projection.key(p.event)) is not None
            )
        )
        # The views the events touch: known already, or fetched in one round trip.
        known = reader.views_by_keys(slots)
        changed = fold_touched(recorded, lambda name, key: known.get((name, key)))
        params = {"events": json_rows(EVENT_COLUMNS, events)}
        for name, (columns, _, to_row) in VIEW_TABLES.items():
            rows = [to_row(view) for (table, _), view in changed.items() if table == name]
            params[name] = json_rows(columns, rows)
        # Not waited for: it travels with the next decision's first read (or the COMMIT),
        # and an error it raises on the server fails the batch there.
        conn = reader.conn
        conn.execute(Q["write_decision"], params)
        reader.known.update(changed)  # later decisions of the batch read these
        reader.window.wrote({k: view for (table, k), view in changed.items() if table == "jobs"})
        return recorded


def _server_error(exc: BaseException) -> bool:
    """True when ``exc`` means the transaction failed on the server (it is then aborted,
    and no later statement of the batch can succeed)."""
    return isinstance(exc, psycopg.Error) and (
        exc.sqlstate is not None or isinstance(exc, psycopg.OperationalError)
    )
