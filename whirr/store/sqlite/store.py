"""SQLite event store (apsw, WAL): the embedded default at ``.whirr/whirr.db``.

Writers take ``BEGIN IMMEDIATE`` so two processes never both read-then-write the same
views: the second waits on the busy timeout instead of failing at commit. The projection
rows are written in the same transaction as the events, so a claim is atomic and a reader
never sees an event without its effect on the views.
"""

from __future__ import annotations

import contextlib
import os
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from datetime import datetime, timedelta
from itertools import repeat
from typing import Any, TypeVar

import apsw
import msgspec

from whirr.clock import UTC, utc_now
from whirr.decoding import LazyDecoder
from whirr.events import Pending, Recorded, tag_of
from whirr.filemodes import create_private_file
from whirr.projections import JobView, QueueView, RunView, WorkerView, fold_touched
from whirr.projections.jobs import Queued, Running, status_column
from whirr.projections.queue_state import QUEUE_KEY
from whirr.store import checkpoints
from whirr.store.guard import decode_stored, encode_for_append, notice, typed
from whirr.store.protocol import ConflictError, Decide, StoreError, StoreWriteError
from whirr.store.retention_history import History
from whirr.store.runs_page import RunsPage, RunsPageResult
from whirr.store.sql import load_queries
from whirr.store.sqlite.notify import DirectoryWatcher

SCHEMA_VERSION = 3
BUSY_TIMEOUT_MS = 30_000
_Q = load_queries("whirr.store.sqlite", "queries.sql")
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_encode_view = msgspec.json.Encoder().encode
_JOB: LazyDecoder[JobView] = LazyDecoder(JobView)
_RUN: LazyDecoder[RunView] = LazyDecoder(RunView)
_WORKER: LazyDecoder[WorkerView] = LazyDecoder(WorkerView)
_QUEUE: LazyDecoder[QueueView] = LazyDecoder(QueueView)
#: The query reading one view of each kind by its id (for a transaction's view cache).
_BY_ID: dict[LazyDecoder[Any], str] = {_JOB: "get_job", _RUN: "get_run", _WORKER: "get_worker"}
_NO_LIMIT = -1
T = TypeVar("T")


def to_us(at: datetime) -> int:
    """Microseconds since the epoch (exact, so a replayed envelope equals the original)."""
    delta = at - _EPOCH
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


def from_us(us: int) -> datetime:
    """Inverse of ``to_us``."""
    return _EPOCH + timedelta(0, 0, us)  # positional: half the cost of microseconds=us


class SQLiteStore:
    """The event log and its views in one SQLite file; one connection per thread."""

    def __init__(self, path: str, clock: Callable[[], datetime] = utc_now) -> None:
        self.path = os.path.abspath(path)
        self._clock = clock
        self._local = threading.local()
        self._connections: list[apsw.Connection] = []
        self._lock = threading.Lock()
        # The database (every job's command, config and environment) is the owner's only:
        # created 0600 here, as SQLite would create it 0644 under the usual umask, and
        # SQLite gives whirr.db-wal and whirr.db-shm the database file's mode.
        try:
            create_private_file(self.path)
        except FileNotFoundError:
            pass  # a missing folder: apsw says so
        except OSError as exc:  # a full or read-only disk, where there is no file yet
            if not os.path.exists(self.path):
                raise StoreWriteError(f"cannot create {self.path}: {exc.strerror}") from exc
        self._migrate(self._conn())
        #: A checkpoint is taken when an append passes a multiple of this (0: never).
        self.checkpoint_every = checkpoints.EVERY

    # -- connections and schema ---------------------------------------------
    def _conn(self) -> apsw.Connection:
        conn = getattr(self._local, "conn", None)
        if conn is None:
            conn = self._connect()
            self._local.conn = conn
            with self._lock:
                self._connections.append(conn)
        return conn

    def _connect(self) -> apsw.Connection:
        try:
            conn = apsw.Connection(self.path)
            conn.set_busy_timeout(BUSY_TIMEOUT_MS)
            conn.execute("PRAGMA journal_mode=WAL")
            # NORMAL in WAL mode: a commit survives a process crash; only an OS crash or
            # power loss can lose the last transactions. Trading that for no fsync per event.
            conn.execute("PRAGMA synchronous=NORMAL")
            # Keep the WAL when the last connection closes. By default SQLite checkpoints
            # and deletes it on close, so every short CLI command (submit, cancel) paid a
            # checkpoint with fsyncs and then a fresh WAL: 15-60 ms here against ~0.1 ms
            # for the commit itself. The WAL is still checkpointed as it grows
            # (wal_autocheckpoint); copy whirr.db together with whirr.db-wal.
            conn.config(apsw.SQLITE_DBCONFIG_NO_CKPT_ON_CLOSE, 1)
        except apsw.Error as exc:
            raise StoreError(f"cannot open {self.path}: {_reason(exc)}") from exc
        return conn

    def _migrate(self, conn: apsw.Connection) -> None:
        try:
            version: Any = conn.execute("PRAGMA user_version").fetchall()[0][0]
            if version > SCHEMA_VERSION:
                raise StoreError(
                    f"{self.path} has schema version {version}, newer than this whirr "
                    f"understands ({SCHEMA_VERSION}); upgrade whirr"
                )
            if version == 0:
                from whirr.migrate.detect import OriginalProject, is_original

                # The original whirr 0.5.3's tables share names with ours: say what to do
                # (``whirr migrate``) before schema_v1 meets them, and write nothing.
                if is_original(conn):
                    raise OriginalProject(self.path)
            if version < SCHEMA_VERSION:
                with conn:
                    # Each step upgrades from the version before it, in one transaction.
                    if version < 1:
                        conn.execute(_Q["schema_v1"])
                    if version < 2:
                        conn.execute(_Q["schema_v2"])
                    if version < 3:
                        conn.execute(_Q["schema_v3"])
                    conn.execute(f"PRAGMA user_version={SCHEMA_VERSION}")
        except apsw.Error as exc:
            raise StoreError(f"cannot use {self.path}: {_reason(exc)}") from exc

    def schema_version(self) -> int:
        """The schema version recorded in the file."""
        return int(self._query("PRAGMA user_version")[0][0])

    def close(self) -> None:
        with self._lock:
            for conn in self._connections:
                conn.close()
            self._connections.clear()
        self._local = threading.local()
        watcher = getattr(self, "_watcher", None)
        if watcher is not None:
            watcher.close()

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
        conn = self._conn()
        try:
            conn.execute("BEGIN IMMEDIATE")
        except apsw.Error as exc:
            raise write_error(self.path, exc) from exc
        # Views read by id inside the transaction are kept until it ends: the write lock
        # is held, so they cannot change under us, and the projection step reads most of
        # what ``decide`` just read (the claimed job, the worker) again.
        self._local.views = {}
        try:
            pending = decide(self)
            recorded = self._insert(conn, pending) if pending else []
            conn.execute("COMMIT")
        except BaseException as exc:
            self._abort(conn, exc)
            raise
        finally:
            self._local.views = None
        if recorded and checkpoints.crossed(
            recorded[0].position, recorded[-1].position, self.checkpoint_every
        ):
            self._checkpoint_now()
        return recorded

    def _checkpoint_now(self) -> None:
        """The automatic checkpoint: the write is committed, so a failure here only
        costs a longer next rebuild, and is told, not raised."""
        try:
            self.checkpoint()
        except (StoreError, OSError, apsw.Error) as exc:
            checkpoints.warn(f"could not take a checkpoint of {self.path}: {exc}")

    def _abort(self, conn: apsw.Connection, exc: BaseException) -> None:
        """Roll back after ``exc``; raise it as a one-line ``StoreError`` when SQLite's.

        A COMMIT that failed (disk full, I/O error) may already have rolled the transaction
        back: a ROLLBACK then fails ("no transaction is active") and would hide the cause."""
        if conn.in_transaction:
            with contextlib.suppress(apsw.Error):  # the cause below is what to report
                conn.execute("ROLLBACK")
        if isinstance(exc, apsw.Error):
            raise write_error(self.path, exc) from exc

    def _insert(self, conn: apsw.Connection, pending: Sequence[Pending]) -> list[Recorded]:
        now = self._clock()
        now_us = to_us(now)
        recorded: list[Recorded] = []
        insert = _Q["insert_event"]
        datas = [encode_for_append(p.event) for p in pending]  # all checked before any insert
        for p, data in zip(pending, datas, strict=True):
            conn.execute(insert, (p.stream, tag_of(p.event), now_us, data))
            recorded.append(Recorded(conn.last_insert_rowid(), now, p.stream, p.event))
        self._project(conn, recorded)
        return recorded

    def _project(self, conn: apsw.Connection, recorded: Sequence[Recorded]) -> None:
        """Fold ``recorded`` into the view rows they touch (read, apply, write back)."""
        changed = fold_touched(recorded, self.view)
        for (name, _), view in changed.items():
            self._write_view(conn, name, view)

    def view(self, name: str, key: Any) -> Any:
        """The view of projection ``name`` under ``key``, as the projection step reads it."""
        if name == "jobs":
            return self.job(key)
        if name == "runs":  # the tombstone of a deleted run too: the projection keeps it
            return self._one("get_run_view", key, _RUN)
        if name == "workers":
            return self.worker(key)
        return self.queue_state()

    @staticmethod
    def _write_view(conn: apsw.Connection, name: str, view: Any) -> None:
        data = _encode_view(view)
        if name == "jobs":
            lease = view.state.lease_expires_at if isinstance(view.state, Running) else None
            lease_s = to_us(lease) / 1e6 if lease is not None else None
            state = view.state
            blocked = 1 if isinstance(state, Queued) and (view.waiting_on or view.held) else 0
            after = state.not_before if isinstance(state, Queued) else None
            after_s = to_us(after) / 1e6 if after is not None else None
            row = {
                "id": view.id,
                "status": status_column(view),
                "priority": view.priority,
                "lease_expires": lease_s,
                "blocked": blocked,
                "not_before": after_s,
                "data": data,
            }
            conn.execute(_Q["upsert_job"], row)
        elif name == "runs":
            run = {
                "id": view.id,
                "status": view.status,
                "started_us": to_us(view.started_at),
                "version": view.version,
                "tags": _encode_view(view.tags),
                "data": data,
            }
            conn.execute(_Q["upsert_run"], run)
        elif name == "queue":
            conn.execute(_Q["upsert_queue_state"], (view.id, data))
        else:
            conn.execute(_Q["upsert_worker"], (view.id, to_us(view.heartbeat_at), data))

    def rebuild(self, full: bool = False) -> int:
        from whirr.store.sqlite import checkpoint

        return checkpoint.rebuild(self, full=full)

    def checkpoint(self) -> int:
        from whirr.store.sqlite import checkpoint

        return checkpoint.take(self)

    def sibling(self, path: str) -> SQLiteStore:
        """Another store of this kind at ``path`` (a checkpoint under construction)."""
        return SQLiteStore(path, self._clock)

    def write_views(self, views: Mapping[tuple[str, Any], Any]) -> None:
        """Write ``views`` (by ``(projection name, key)``) in one transaction: how a
        checkpoint under construction is brought forward."""
        conn = self._conn()
        conn.execute("BEGIN IMMEDIATE")
        try:
            for (name, _), view in views.items():
                self._write_view(conn, name, view)
            conn.execute("COMMIT")
        except BaseException as exc:
            self._abort(conn, exc)
            raise

    def swap_views(self, source: str, position: int) -> int:
        """Under the write lock: replace the views by those of the database at ``source``
        (a checkpoint's, at ``position``) and fold the events after ``position`` into
        them, streaming; returns the position the views are then at."""
        conn = self._conn()
        try:
            conn.execute(_Q["attach_checkpoint"], (source,))
            conn.execute("BEGIN IMMEDIATE")
        except apsw.Error as exc:
            with contextlib.suppress(apsw.Error):
                conn.execute(_Q["detach_checkpoint"])
            raise write_error(self.path, exc) from exc
        try:
            conn.execute(_Q["drop_projections"])
            conn.execute(_Q["restore_projections"])
            # Archived events (retention) merged back in, should the tail reach them.
            history = History(self)
            while batch := history.read(position, checkpoints.BATCH):
                self._local.views = {}
                self._project(conn, batch)
                self._local.views = None
                position = batch[-1].position
            conn.execute("COMMIT")
        except BaseException as exc:
            self._local.views = None
            self._abort(conn, exc)
            raise
        finally:
            with contextlib.suppress(apsw.Error):
                conn.execute(_Q["detach_checkpoint"])
        return position

    # -- the log -------------------------------------------------------------
    def head(self) -> int:
        return int(self._query(_Q["head"])[0][0])

    def read(
        self,
        after: int = 0,
        limit: int | None = None,
        stream: str | None = None,
        types: Sequence[str] | None = None,
    ) -> list[Recorded]:
        params = {
            "after": after,
            "limit": _NO_LIMIT if limit is None else limit,
            "stream": stream,
            "types": msgspec.json.encode(list(types)).decode() if types is not None else None,
        }
        try:
            rows = self._query(_Q["read_events"], params)
        except apsw.Error as exc:
            raise StoreError(f"cannot read {self.path}: {_reason(exc)}") from exc
        recorded: list[Recorded] = []
        if rows:
            # Column by column, in loops that run in C (``map``, ``zip``): a replay reads
            # every event of the log, and a loop in Python cost as much as decoding them.
            positions, uss, streams, datas = zip(*rows, strict=True)
            events = decode_stored(datas)
            times = map(_EPOCH.__add__, map(timedelta, repeat(0), repeat(0), uss))  # from_us
            recorded = list(map(Recorded, positions, times, streams, events))
            if types is not None:
                keeps = typed(events, types)
                recorded = [rec for rec, keep in zip(recorded, keeps, strict=True) if keep]
        notice(self, recorded)
        return recorded

    def wait(self, after: int, timeout: float) -> bool:
        watcher = getattr(self._local, "watcher", None)
        if watcher is None:
            watcher = DirectoryWatcher(os.path.dirname(self.path))
            self._local.watcher = watcher
        deadline = _monotonic() + timeout
        while True:
            watcher.arm()
            if self.head() > after:
                return True
            remaining = deadline - _monotonic()
            if remaining <= 0:
                return False
            # Re-check at least every second: inotify misses writes made over some
            # network filesystems, and this bounds the cost of such a miss.
            watcher.wait(min(remaining, 1.0))

    # -- views ---------------------------------------------------------------
    def _query(self, sql: str, params: Any = ()) -> list[Any]:
        """Rows of a query on this thread's connection (apsw values, untyped)."""
        return list(self._conn().execute(sql, params))

    def _one(self, query: str, key: Any, decoder: LazyDecoder[T]) -> T | None:
        views: dict[tuple[str, Any], Any] | None = getattr(self._local, "views", None)
        if views is not None and (query, key) in views:
            return views[query, key]
        rows = self._query(_Q[query], (key,))
        view = decoder.one(rows[0][0]) if rows else None
        if views is not None:
            views[query, key] = view
        return view

    def _many(self, query: str, params: Any, decoder: LazyDecoder[T]) -> list[T]:
        found = decoder.many([row[0] for row in self._query(_Q[query], params)])
        views: dict[tuple[str, Any], Any] | None = getattr(self._local, "views", None)
        if views is not None and decoder in _BY_ID:
            by_id = _BY_ID[decoder]  # a claim reads candidates as a list, then one by id
            for view in found:
                views[by_id, view.id] = view  # type: ignore[attr-defined]
        return found

    def job(self, job_id: int) -> JobView | None:
        return self._one("get_job", job_id, _JOB)

    def jobs(
        self, statuses: Sequence[str] | None = None, limit: int | None = None
    ) -> list[JobView]:
        lim = _NO_LIMIT if limit is None else limit
        if statuses is None:
            return self._many("jobs_all", {"limit": lim}, _JOB)
        encoded = msgspec.json.encode(list(statuses)).decode()
        return self._many("jobs_by_status", {"statuses": encoded, "limit": lim}, _JOB)

    def claimable_jobs(self, limit: int, now: datetime | None = None) -> list[JobView]:
        params = {"limit": limit, "now": None if now is None else to_us(now) / 1e6}
        return self._many("claimable_jobs", params, _JOB)

    def expired_leases(self, now: datetime) -> list[JobView]:
        return self._many("expired_leases", (to_us(now) / 1e6,), _JOB)

    def job_counts(self) -> dict[str, int]:
        return {status: n for status, n in self._query(_Q["job_counts"])}

    def max_job_id(self) -> int:
        return int(self._query(_Q["max_job_id"])[0][0])

    def run(self, run_id: str) -> RunView | None:
        return self._one("get_run", run_id, _RUN)

    def runs(
        self,
        status: str | None = None,
        tag: str | None = None,
        limit: int | None = None,
        archived: bool | None = None,
    ) -> list[RunView]:
        params = {
            "status": status,
            "limit": _NO_LIMIT if limit is None else limit,
            "archived": None if archived is None else int(archived),
        }
        if tag is None:
            return self._many("runs", params, _RUN)
        return self._many("runs_tagged", {**params, "tag": tag}, _RUN)

    def runs_by_prefix(self, prefix: str, limit: int = 10) -> list[RunView]:
        return self._many("runs_by_prefix", {"prefix": prefix, "limit": limit}, _RUN)

    def runs_page(self, page: RunsPage) -> RunsPageResult:
        if page.sort == "started_at" and page.descending and page.tag is None and not page.words:
            return self._newest_page(page)
        params = {
            "status": page.status,
            "tag": page.tag,
            "archived": None if page.archived is None else int(page.archived),
            "sort": page.sort,
            "path": page.sqlite_path(),
            "words": _encode_view(page.words).decode(),
            "descending": int(page.descending),
            "limit": page.limit,
            "offset": page.offset,
        }
        rows = self._query(_Q["runs_page"], params)
        matched = int(rows[0][1]) if rows else 0
        if not rows and page.offset:  # past the end: the count still says how many match
            matched = self.runs_page(replace(page, offset=0, limit=1)).matched
        ids = [row[0] for row in rows]
        data = dict(self._query(_Q["runs_by_ids"], (_encode_view(ids).decode(),)))
        # A run deleted between the two reads is left out of the page.
        return RunsPageResult(_RUN.many([data[i] for i in ids if i in data]), matched)

    def _newest_page(self, page: RunsPage) -> RunsPageResult:
        """The newest runs (by status or not) along the index, counted by status."""
        params = {
            "status": page.status,
            "archived": None if page.archived is None else int(page.archived),
            "limit": page.limit,
            "offset": page.offset,
        }
        ids = [row[0] for row in self._query(_Q["runs_page_newest"], params)]
        counts = self.run_status_counts(page.archived)
        matched = counts.get(page.status, 0) if page.status else sum(counts.values())
        data = dict(self._query(_Q["runs_by_ids"], (_encode_view(ids).decode(),)))
        return RunsPageResult(_RUN.many([data[i] for i in ids if i in data]), matched)

    def run_status_counts(self, archived: bool | None = False) -> dict[str, int]:
        flag = None if archived is None else int(archived)
        return dict(self._query(_Q["run_status_counts"], {"archived": flag}))

    def worker(self, worker_id: str) -> WorkerView | None:
        return self._one("get_worker", worker_id, _WORKER)

    def workers(self, heard_since: datetime | None = None) -> list[WorkerView]:
        since_us = 0 if heard_since is None else to_us(heard_since)
        return self._many("workers", {"since_us": since_us}, _WORKER)

    def queue_state(self) -> QueueView:
        view: QueueView | None = self._one("get_queue_state", QUEUE_KEY, _QUEUE)
        return view if view is not None else QueueView()


def write_error(path: str, exc: apsw.Error) -> StoreError:
    """What a failed write says: one line, the file and the cause. Disk full, a read-only
    file system and I/O errors are ``StoreWriteError``s (fix the cause and retry)."""
    if isinstance(exc, apsw.FullError):
        why = "the disk is full; free some space and try again"
    elif isinstance(exc, apsw.ReadOnlyError):
        why = "it is read-only (a read-only file system or file); make it writable and try again"
    elif isinstance(exc, apsw.IOError | apsw.CantOpenError):
        why = f"I/O error ({exc}); check the disk and try again"
    else:
        return StoreError(f"cannot write {path}: {_reason(exc)}")
    return StoreWriteError(f"cannot write {path}: {why} (nothing of this write was recorded)")


def _reason(exc: apsw.Error) -> str:
    if isinstance(exc, apsw.NotADBError | apsw.CorruptError):
        return "the file is corrupt or not a whirr database"
    if isinstance(exc, apsw.BusyError):
        return "the database stayed locked by another process"
    return str(exc)


def _monotonic() -> float:
    import time

    return time.monotonic()
