"""The views a group-committed batch decides on, and the writer's cache of them.

Decisions read views one at a time (``reader.job(7)``), and each read inside the write
transaction is a round trip that the whole batch waits for while it holds the append
lock. Most of those views are ones the writer itself just wrote or read: a claim reads the
queue state and its worker; the finish of that job reads the job the claim wrote. So the
writer keeps the views it has seen, and a batch reads through them.

Why that is exact, not a guess: views change only under the append lock, either with the
log (``transact``) or by a ``rebuild``, which bumps the views' epoch (a one-row table).
The cache holds views as of the writer's last commit, with that commit's head and epoch.
A batch that takes the lock and finds both where the writer left them knows that nobody
wrote since, so every cached view is current; if either moved (another process wrote, or
rebuilt the views), or the writer's last batch failed, the cache is dropped before any
decision runs. A batch reads and writes the cache as it goes (what it finds there
includes its own uncommitted writes, as its queries do); if the batch fails, the whole
cache is dropped, since some of it may never have been committed.

What is cached is what a point read returns (a view, or None for "no such view") and the
views that list queries returned; list queries themselves (jobs by status, expired
leases) always go to the database, and the claim candidates once per batch
(claim_window.py).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from whirr.projections import JobView, QueueView, RunView, WorkerView
from whirr.projections.queue_state import QUEUE_KEY
from whirr.projections.run_manage import DELETED
from whirr.store.postgres.claim_window import ClaimWindow
from whirr.store.postgres.views import Conn, PgViews, decode_job

#: ``(projection name, key)``: where one view lives.
Slot = tuple[str, Any]

#: Views cached at most; beyond it the cache starts over (it refills as the writer works).
MAX_CACHED = 20_000

_UNKNOWN = object()


class ViewCache:
    """Views as of the writer's last commit, valid while the log's head and the views'
    epoch are still ``state`` (the writer thread's alone)."""

    def __init__(self) -> None:
        self.views: dict[Slot, Any] = {}
        self.state: tuple[int, int] | None = None  # nothing committed yet: nothing known

    def start(self, state: tuple[int, int]) -> dict[Slot, Any]:
        """The views a batch that found the log in ``state`` (head, epoch) may trust; the
        batch adds what it reads and writes."""
        if state != self.state or len(self.views) > MAX_CACHED:
            self.views.clear()
        self.state = None  # until the batch commits
        return self.views

    def committed(self, state: tuple[int, int]) -> None:
        """The batch committed, leaving the log in ``state``."""
        self.state = state

    def failed(self) -> None:
        """The batch failed: what it saw may never have been committed."""
        self.views.clear()
        self.state = None


class BatchViews(PgViews):
    """What a decision reads inside a batch: point reads through ``known`` (the cache),
    the head without a query (it was read after the lock, and only
    this transaction has appended since), claim candidates through the batch's
    ``window`` (claim_window.py), other lists from the database (their views noted)."""

    def __init__(
        self, conn: Conn, head: int, known: dict[Slot, Any], window: ClaimWindow | None = None
    ) -> None:
        super().__init__(conn, locking=True)
        self._head = head
        self.known = known
        self.window = window if window is not None else ClaimWindow()

    def head(self) -> int:
        """Position of the newest event, counting this batch's earlier decisions."""
        return self._head

    def _point(self, name: str, key: Any) -> Any:
        view = self.known.get((name, key), _UNKNOWN)
        if view is _UNKNOWN:
            view = super().views_by_keys([(name, key)]).get((name, key))
            self.known[(name, key)] = view
        return view

    def _note(self, name: str, views: list[Any]) -> list[Any]:
        for view in views:
            self.known[(name, view.id)] = view
        return views

    def job(self, job_id: int) -> JobView | None:
        """One job's view."""
        view: JobView | None = self._point("jobs", job_id)
        return view

    def run(self, run_id: str) -> RunView | None:
        """One run's view."""
        view: RunView | None = self._point("runs", run_id)
        # The batch may know the tombstone a RunDeleted just wrote; readers never see one.
        return None if view is None or view.status == DELETED else view

    def worker(self, worker_id: str) -> WorkerView | None:
        """One worker's view."""
        view: WorkerView | None = self._point("workers", worker_id)
        return view

    def queue_state(self) -> QueueView:
        """The queue's one view (``QueueView()`` before any pause or resume)."""
        view: QueueView | None = self._point("queue", QUEUE_KEY)
        return view if view is not None else QueueView()

    def jobs(
        self, statuses: Sequence[str] | None = None, limit: int | None = None
    ) -> list[JobView]:
        """Jobs with one of ``statuses`` (all when None), newest first."""
        return self._note("jobs", super().jobs(statuses, limit))

    def claimable_jobs(self, limit: int, now: datetime | None = None) -> list[JobView]:
        """Claim candidates, locked ``FOR UPDATE SKIP LOCKED`` (see ``PgViews``). The
        rows come from the batch's window when it can tell, else from the database (with
        rows to spare for the batch's next claims); only the ones not known yet are
        decoded (a claim reads the same window of the queue as the claim before it)."""
        rows = self.window.take(limit, now)
        if rows is None:
            fetch = self.window.fetch_limit(limit)
            self.window.read(self.claimable_rows(fetch, now), fetch, now)
            rows = self.window.take(limit, now)
            assert rows is not None  # just read, at this ``now``
        views = []
        for job_id, data in rows:
            view = self.known.get(("jobs", job_id))
            if view is None:
                view = self.known[("jobs", job_id)] = decode_job(data)
            views.append(view)
        return views

    def expired_leases(self, now: datetime) -> list[JobView]:
        """Running jobs whose lease ran out before ``now``."""
        return self._note("jobs", super().expired_leases(now))

    def runs(
        self,
        status: str | None = None,
        tag: str | None = None,
        limit: int | None = None,
        archived: bool | None = None,
    ) -> list[RunView]:
        """Runs, newest first, optionally filtered by status, tag and archived."""
        return self._note("runs", super().runs(status, tag, limit, archived))

    def runs_by_prefix(self, prefix: str, limit: int = 10) -> list[RunView]:
        """Runs whose id starts with ``prefix``."""
        return self._note("runs", super().runs_by_prefix(prefix, limit))

    def workers(self, heard_since: datetime | None = None) -> list[WorkerView]:
        """The workers heard from since ``heard_since`` (None: every one registered)."""
        return self._note("workers", super().workers(heard_since))

    def views_by_keys(self, slots: Sequence[Slot]) -> dict[Slot, Any]:
        """The current views under ``slots`` (absent ones left out); only the ones not
        known yet are fetched, together in one round trip."""
        missing = [slot for slot in slots if slot not in self.known]
        if missing:
            found = super().views_by_keys(missing)
            for slot in missing:
                self.known[slot] = found.get(slot)
        views = {slot: self.known[slot] for slot in slots}
        return {slot: view for slot, view in views.items() if view is not None}
