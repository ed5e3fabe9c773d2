"""The store protocol: a position-ordered, append-only event log plus the views projected
from it. Every backend (memory, SQLite, PostgreSQL) implements it and passes one contract
test suite (``tests/store``)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Protocol

from whirr.events import Pending, Recorded
from whirr.projections import JobView, QueueView, RunView, WorkerView
from whirr.store.runs_page import RunsPage, RunsPageResult


class StoreError(Exception):
    """The store cannot be used (corrupt, wrong schema version, unreachable)."""


class StoreWriteError(StoreError):
    """A write failed for a reason outside whirr (disk full, read-only file system, I/O
    error): nothing of it was recorded, and the same write may succeed once that is
    fixed. A worker pauses and retries on it rather than stopping."""


class InvalidEvent(StoreError):
    """An event was refused before it reached the log: it would not decode as its own
    type (the message names the event type and the field). Nothing was appended."""

    #: The HTTP status the API answers with (the request, not the store, is at fault).
    status = 422


class ConflictError(StoreError):
    """A conditional append found the log at another position than expected."""

    def __init__(self, expected: int, actual: int) -> None:
        super().__init__(f"expected the log at position {expected}, found {actual}")
        self.expected = expected
        self.actual = actual


class ViewReader(Protocol):
    """Read access to the projected views (and the log's head)."""

    def head(self) -> int:
        """Position of the newest event (0 for an empty log)."""
        ...

    def job(self, job_id: int) -> JobView | None:
        """One job's view."""
        ...

    def jobs(
        self, statuses: Sequence[str] | None = None, limit: int | None = None
    ) -> list[JobView]:
        """Jobs with one of ``statuses`` (all when None), newest first."""
        ...

    def claimable_jobs(self, limit: int, now: datetime | None = None) -> list[JobView]:
        """Up to ``limit`` queued jobs in claim order (priority desc, id asc), leaving out
        jobs still waiting on a dependency (``JobView.waiting_on`` not empty) and, when
        ``now`` is given, jobs whose retry backoff (``Queued.not_before``) is after ``now``.

        Both are left out *by the query*, not after it: the claim policy only looks at the
        first ``CLAIM_WINDOW`` rows, and blocked jobs at the head of the order must not
        fill that window and starve ready jobs behind them. SQLite keeps two indexed
        columns for it (``blocked``: 1 while ``waiting_on`` is not empty, ``not_before``:
        the backoff end, NULL when none), written from the view on every upsert."""
        ...

    def expired_leases(self, now: datetime) -> list[JobView]:
        """Running jobs whose lease ran out before ``now``."""
        ...

    def job_counts(self) -> dict[str, int]:
        """Number of jobs per status."""
        ...

    def max_job_id(self) -> int:
        """Largest job id so far (0 when none)."""
        ...

    def run(self, run_id: str) -> RunView | None:
        """One run's view."""
        ...

    def runs(
        self,
        status: str | None = None,
        tag: str | None = None,
        limit: int | None = None,
        archived: bool | None = None,
    ) -> list[RunView]:
        """Runs, newest first, optionally filtered by status, tag and ``archived``
        (None: archived or not). A deleted run (``run.deleted``) is never returned, by
        this or any other reader."""
        ...

    def runs_by_prefix(self, prefix: str, limit: int = 10) -> list[RunView]:
        """Runs whose id starts with ``prefix``."""
        ...

    def runs_page(self, page: RunsPage) -> RunsPageResult:
        """One page of runs filtered and sorted by the store (``whirr.store.runs_page``
        says how), and how many match: a reader shows a hundred runs of a hundred
        thousand without holding them all."""
        ...

    def run_status_counts(self, archived: bool | None = False) -> dict[str, int]:
        """How many runs have each status (statuses of no run left out), archived ones
        or not (None: both); deleted runs never count."""
        ...

    def worker(self, worker_id: str) -> WorkerView | None:
        """One worker's view."""
        ...

    def workers(self, heard_since: datetime | None = None) -> list[WorkerView]:
        """The workers last heard from (``heartbeat_at``) at or after ``heard_since``;
        None: every worker ever registered. Listings pass a cutoff, so that workers long
        gone (restarted ones leave their old ids behind) are read through an index and
        never scanned."""
        ...

    def queue_state(self) -> QueueView:
        """The queue projection's one view (key ``"queue"``; ``QueueView()`` when no pause or
        resume was ever recorded): is claiming paused?"""
        ...


#: A decision made inside the store's write transaction: read views, return events.
Decide = Callable[[ViewReader], Sequence[Pending]]


class EventStore(ViewReader, Protocol):
    """An event log with projections kept in step with every append."""

    def append(self, events: Sequence[Pending], expect: int | None = None) -> int:
        """Append atomically; with ``expect``, only if the head is still there. Returns the
        position of the last event (the head when ``events`` is empty)."""
        ...

    def transact(self, decide: Decide) -> list[Recorded]:
        """Run ``decide`` under the write lock, append what it returns and update the
        projections in the same transaction. Exceptions from ``decide`` roll back."""
        ...

    def read(
        self,
        after: int = 0,
        limit: int | None = None,
        stream: str | None = None,
        types: Sequence[str] | None = None,
    ) -> list[Recorded]:
        """Events with position > ``after`` in position order, optionally filtered."""
        ...

    def wait(self, after: int, timeout: float) -> bool:
        """Block until an event newer than ``after`` exists (True) or ``timeout`` passes."""
        ...

    def rebuild(self, full: bool = False) -> int:
        """Replace the views by a replay of the log: from the newest valid checkpoint
        (``full``: from position 0), streaming; returns the number of events replayed.
        Writes a checkpoint at the position reached (docs/architecture.md,
        "Checkpoints")."""
        ...

    def checkpoint(self) -> int:
        """Write a checkpoint of the views at the head, itself a replay (the newest valid
        checkpoint and the events since, never the live views copied on trust; on
        PostgreSQL, a rebuild); returns its position."""
        ...

    def close(self) -> None:
        """Release connections and watchers."""
        ...
