"""Reading the projected views (and the log's head) over one PostgreSQL connection, and
the rows a write turns them into.

The same reader serves plain reads on a pooled connection and the decisions that run
inside a write transaction (``PostgresStore.transact``), where it sees the transaction's
own uncommitted writes.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import replace
from datetime import datetime
from typing import Any

import msgspec
import psycopg

from whirr.projections import JobView, QueueView, RunView, WorkerView
from whirr.projections.jobs import Queued, Running, status_column
from whirr.projections.queue_state import QUEUE_KEY
from whirr.store.postgres.schema import Q
from whirr.store.runs_page import RunsPage, RunsPageResult

Conn = psycopg.Connection[tuple[Any, ...]]

_encode_view = msgspec.json.Encoder().encode
decode_job = msgspec.json.Decoder(JobView).decode
_decode_run = msgspec.json.Decoder(RunView).decode
_decode_worker = msgspec.json.Decoder(WorkerView).decode
_decode_queue = msgspec.json.Decoder(QueueView).decode


def job_row(view: JobView) -> tuple[Any, ...]:
    """The ``jobs`` row of a job view: the columns queries filter on, then the whole view."""
    state = view.state
    lease = state.lease_expires_at if isinstance(state, Running) else None
    # Blocked (waiting on a dependency, or held) and backing off (not_before) are columns so that
    # the claim query leaves such jobs out rather than letting them fill the claim window.
    blocked = isinstance(state, Queued) and bool(view.waiting_on or view.held)
    not_before = state.not_before if isinstance(state, Queued) else None
    return (
        view.id,
        status_column(view),
        view.priority,
        lease,
        blocked,
        not_before,
        _encode_view(view).decode(),
    )


def run_row(view: RunView) -> tuple[Any, ...]:
    """The ``runs`` row of a run view."""
    return (
        view.id,
        view.status,
        view.started_at,
        view.version,
        list(view.tags),
        _encode_view(view).decode(),
    )


def worker_row(view: WorkerView) -> tuple[Any, ...]:
    """The ``workers`` row of a worker view."""
    return (view.id, view.heartbeat_at, _encode_view(view).decode())


def queue_row(view: QueueView) -> tuple[Any, ...]:
    """The ``queue_state`` row of the queue view."""
    return (view.id, _encode_view(view).decode())


#: Per projection: the columns of its table (in ``write_decision``, the parameter
#: ``<projection>_<column>`` carries a column), the bulk-load block and the row builder.
VIEW_TABLES: dict[str, tuple[tuple[str, ...], str, Callable[[Any], tuple[Any, ...]]]] = {
    "jobs": (
        ("id", "status", "priority", "lease_expires", "blocked", "not_before", "data"),
        "copy_jobs",
        job_row,
    ),
    "runs": (("id", "status", "started_at", "version", "tags", "data"), "copy_runs", run_row),
    "workers": (("id", "heard_at", "data"), "copy_workers", worker_row),
    "queue": (("id", "data"), "copy_queue_state", queue_row),
}


#: The columns of ``events`` that ``write_decision`` takes, in row order.
EVENT_COLUMNS = ("position", "stream", "type", "recorded_at", "data")


def json_rows(columns: Sequence[str], rows: Sequence[tuple[Any, ...]]) -> str:
    """``rows`` as the JSON array of objects ``write_decision`` takes for one table.

    PostgreSQL text cannot hold NUL characters; the driver would refuse such a value on
    the client, so this does too (a JSON ``\\u0000`` would fail on the server, and with
    it every decision of the batch)."""
    for row in rows:
        for value in row:
            if _has_nul(value):
                raise psycopg.DataError("PostgreSQL text fields cannot contain NUL (0x00) bytes")
    return _encode_view([dict(zip(columns, row, strict=True)) for row in rows]).decode()


def _has_nul(value: Any) -> bool:
    if isinstance(value, str):
        return "\x00" in value
    if isinstance(value, list):
        return any(_has_nul(v) for v in value)
    return False


class PgViews:
    """The ``ViewReader`` protocol over one connection.

    ``locking`` is set inside write transactions: claim candidates are then read with
    ``FOR UPDATE SKIP LOCKED``.
    """

    def __init__(self, conn: Conn, *, locking: bool = False) -> None:
        self.conn = conn
        self.locking = locking

    def _one(self, query: str, key: Any, decoder: Callable[[str], Any]) -> Any:
        row = self.conn.execute(Q[query], (key,)).fetchone()
        return decoder(row[0]) if row else None

    def _many(self, query: str, params: Any, decoder: Callable[[str], Any]) -> list[Any]:
        return [decoder(row[0]) for row in self.conn.execute(Q[query], params)]

    def _scalar(self, query: str) -> int:
        row = self.conn.execute(Q[query]).fetchone()
        return int(row[0]) if row else 0

    def head(self) -> int:
        """Position of the newest event (0 for an empty log)."""
        return self._scalar("head")

    def job(self, job_id: int) -> JobView | None:
        """One job's view."""
        return self._one("get_job", job_id, decode_job)

    def jobs(
        self, statuses: Sequence[str] | None = None, limit: int | None = None
    ) -> list[JobView]:
        """Jobs with one of ``statuses`` (all when None), newest first."""
        if statuses is None:
            return self._many("jobs_all", {"limit": limit}, decode_job)
        params = {"statuses": list(statuses), "limit": limit}
        return self._many("jobs_by_status", params, decode_job)

    def claimable_jobs(self, limit: int, now: datetime | None = None) -> list[JobView]:
        """Up to ``limit`` queued jobs in claim order (priority desc, id asc), leaving out
        jobs blocked on a dependency and, given ``now``, jobs still backing off.

        In a write transaction the rows are also locked ``FOR UPDATE SKIP LOCKED``. Every
        whirr writer already holds the append lock there, so today no candidate is ever
        skipped; the row locks make the claim safe on its own terms as well (a repair
        script or a future writer that updates jobs without the append lock can neither
        be handed a row a claim is deciding on nor make a claimer wait), at the cost of
        locking at most ``limit`` rows that the transaction may rewrite anyway.
        """
        return [decode_job(data) for _, data in self.claimable_rows(limit, now)]

    def claimable_rows(self, limit: int, now: datetime | None = None) -> list[tuple[int, str]]:
        """``claimable_jobs`` undecoded: ``(job id, view JSON)`` rows."""
        query = "claimable_jobs_locked" if self.locking else "claimable_jobs"
        rows = self.conn.execute(Q[query], {"limit": limit, "now": now}).fetchall()
        return [(int(job_id), str(data)) for job_id, data in rows]

    def expired_leases(self, now: datetime) -> list[JobView]:
        """Running jobs whose lease ran out before ``now``."""
        return self._many("expired_leases", (now,), decode_job)

    def job_counts(self) -> dict[str, int]:
        """Number of jobs per status."""
        return {str(status): int(n) for status, n in self.conn.execute(Q["job_counts"])}

    def max_job_id(self) -> int:
        """Largest job id so far (0 when none)."""
        return self._scalar("max_job_id")

    def run(self, run_id: str) -> RunView | None:
        """One run's view."""
        return self._one("get_run", run_id, _decode_run)

    def runs(
        self,
        status: str | None = None,
        tag: str | None = None,
        limit: int | None = None,
        archived: bool | None = None,
    ) -> list[RunView]:
        """Runs, newest first, optionally filtered by status, tag and archived."""
        params = {"status": status, "limit": limit, "archived": archived}
        if tag is None:
            return self._many("runs", params, _decode_run)
        return self._many("runs_tagged", {**params, "tag": tag}, _decode_run)

    def runs_by_prefix(self, prefix: str, limit: int = 10) -> list[RunView]:
        """Runs whose id starts with ``prefix``."""
        return self._many("runs_by_prefix", {"prefix": prefix, "limit": limit}, _decode_run)

    def runs_page(self, page: RunsPage) -> RunsPageResult:
        """One page of runs, filtered and sorted by the database."""
        params = {
            "status": page.status,
            "tag": page.tag,
            "archived": page.archived,
            "sort": page.sort,
            "path": page.path,
            "words": page.words,
            "descending": page.descending,
            "limit": page.limit,
            "offset": page.offset,
        }
        rows = self.conn.execute(Q["runs_page"], params).fetchall()
        matched = int(rows[0][1]) if rows else 0
        if not rows and page.offset:  # past the end: the count still says how many match
            matched = self.runs_page(replace(page, offset=0, limit=1)).matched
        ids = [row[0] for row in rows]
        data: dict[str, str] = dict(self.conn.execute(Q["runs_by_ids"], {"ids": ids}).fetchall())
        # A run deleted between the two reads is left out of the page.
        return RunsPageResult([_decode_run(data[i]) for i in ids if i in data], matched)

    def run_status_counts(self, archived: bool | None = False) -> dict[str, int]:
        """How many runs have each status."""
        rows = self.conn.execute(Q["run_status_counts"], {"archived": archived}).fetchall()
        return {status: int(n) for status, n in rows}

    def worker(self, worker_id: str) -> WorkerView | None:
        """One worker's view."""
        return self._one("get_worker", worker_id, _decode_worker)

    def workers(self, heard_since: datetime | None = None) -> list[WorkerView]:
        """The workers heard from since ``heard_since`` (None: every one registered)."""
        return self._many("workers", {"since": heard_since}, _decode_worker)

    def queue_state(self) -> QueueView:
        """The queue's one view (``QueueView()`` before any pause or resume)."""
        view: QueueView | None = self._one("get_queue_state", QUEUE_KEY, _decode_queue)
        return view if view is not None else QueueView()

    def views_by_keys(self, slots: Sequence[tuple[str, Any]]) -> dict[tuple[str, Any], Any]:
        """The current views under ``(projection, key)`` slots (absent ones left out).

        All the queries are sent before any result is read, so in pipeline mode they
        share one round trip."""
        cursors = [
            (slot, self.conn.execute(Q[_GET_VIEW[slot[0]][0]], (slot[1],))) for slot in slots
        ]
        found: dict[tuple[str, Any], Any] = {}
        for slot, cursor in cursors:
            row = cursor.fetchone()
            if row is not None:
                found[slot] = _GET_VIEW[slot[0]][1](row[0])
        return found


#: Per projection: the query that reads one view by key, and its decoder.
_GET_VIEW: dict[str, tuple[str, Callable[[str], Any]]] = {
    "jobs": ("get_job", decode_job),
    "runs": ("get_run_view", _decode_run),  # the tombstone too: the projection keeps it
    "workers": ("get_worker", _decode_worker),
    "queue": ("get_queue_state", _decode_queue),
}
