"""In-memory store: real code (the unit tests' backend), not a mock."""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any

from whirr.clock import utc_now
from whirr.events import Pending, Recorded, tag_of
from whirr.projections import PROJECTIONS, JobView, QueueView, RunView, WorkerView, fold_one
from whirr.projections.jobs import Queued, Running
from whirr.projections.queue import claim_order
from whirr.projections.queue_state import QUEUE_KEY
from whirr.projections.run_manage import DELETED
from whirr.store import runs_page
from whirr.store.guard import encode_for_append, notice
from whirr.store.protocol import ConflictError, Decide
from whirr.store.runs_page import RunsPage, RunsPageResult


class MemoryStore:
    """The whole log and its views in this process, guarded by one lock."""

    def __init__(self, clock: Callable[[], datetime] = utc_now) -> None:
        self._clock = clock
        self._log: list[Recorded] = []
        self._views: dict[str, dict[Any, Any]] = {p.name: {} for p in PROJECTIONS}
        self._changed = threading.Condition(threading.RLock())
        #: The checkpoint: a position and the views folded up to it (None: none yet).
        self._saved: tuple[int, dict[str, dict[Any, Any]] | None] = (0, None)

    # -- writing -------------------------------------------------------------
    def append(self, events: Sequence[Pending], expect: int | None = None) -> int:
        def decide(reader: Any) -> Sequence[Pending]:
            if expect is not None and reader.head() != expect:
                raise ConflictError(expect, reader.head())
            return events

        recorded = self.transact(decide)
        return recorded[-1].position if recorded else self.head()

    def transact(self, decide: Decide) -> list[Recorded]:
        with self._changed:
            pending = decide(self)
            for p in pending:
                encode_for_append(p.event)  # refuses what would not decode: nothing appended
            now = self._clock()
            recorded = [
                Recorded(len(self._log) + i + 1, now, p.stream, p.event)
                for i, p in enumerate(pending)
            ]
            for rec in recorded:
                self._apply(rec)
            self._log.extend(recorded)
            if recorded:
                self._changed.notify_all()
            return recorded

    def _apply(self, rec: Recorded) -> None:
        fold_one(self._views, rec)

    def rebuild(self, full: bool = False) -> int:
        with self._changed:
            start = 0 if full else self._saved[0]
            self._views = self._replay(full)
            self._saved = (len(self._log), self._copy(self._views))
            return len(self._log) - start

    def checkpoint(self) -> int:
        with self._changed:
            # A fold of the log, never the live views taken on trust: folded forward
            # from the last checkpoint, as the other backends do.
            self._saved = (len(self._log), self._replay(full=False))
            return len(self._log)

    def _replay(self, full: bool) -> dict[str, dict[Any, Any]]:
        """The views at the head: the checkpoint's (none: ``full``) plus the events after it."""
        start, saved = (0, None) if full else self._saved
        views = self._copy(saved) if saved is not None else {p.name: {} for p in PROJECTIONS}
        for rec in self._log[start:]:
            fold_one(views, rec)
        return views

    @staticmethod
    def _copy(views: dict[str, dict[Any, Any]]) -> dict[str, dict[Any, Any]]:
        # Views are frozen structs: copying the tables copies the views.
        return {name: dict(table) for name, table in views.items()}

    # -- the log -------------------------------------------------------------
    def head(self) -> int:
        with self._changed:  # never mid-transaction: views and log move together
            return len(self._log)

    def read(
        self,
        after: int = 0,
        limit: int | None = None,
        stream: str | None = None,
        types: Sequence[str] | None = None,
    ) -> list[Recorded]:
        with self._changed:
            out: list[Recorded] = []
            wanted = set(types) if types is not None else None
            for rec in self._log[after:]:
                if limit is not None and len(out) >= limit:
                    break
                if stream is not None and rec.stream != stream:
                    continue
                if wanted is not None and tag_of(rec.event) not in wanted:
                    continue
                out.append(rec)
        notice(self, out)
        return out

    def wait(self, after: int, timeout: float) -> bool:
        with self._changed:
            return self._changed.wait_for(lambda: len(self._log) > after, timeout)

    def close(self) -> None:
        pass

    # -- views ---------------------------------------------------------------
    def job(self, job_id: int) -> JobView | None:
        with self._changed:
            return self._views["jobs"].get(job_id)

    def jobs(
        self, statuses: Sequence[str] | None = None, limit: int | None = None
    ) -> list[JobView]:
        with self._changed:
            found = [
                j
                for j in sorted(self._views["jobs"].values(), key=lambda j: -j.id)
                if (statuses is None or j.status in statuses) and not j.cleaned
            ]
        return found[:limit] if limit is not None else found

    def claimable_jobs(self, limit: int, now: datetime | None = None) -> list[JobView]:
        with self._changed:
            queued = [
                j
                for j in self._views["jobs"].values()
                if isinstance(j.state, Queued)
                and not j.waiting_on
                and not j.held
                and (now is None or j.state.not_before is None or j.state.not_before <= now)
            ]
        return sorted(queued, key=claim_order)[:limit]

    def expired_leases(self, now: datetime) -> list[JobView]:
        with self._changed:
            return [
                j
                for j in self._views["jobs"].values()
                if isinstance(j.state, Running) and j.state.lease_expires_at < now
            ]

    def job_counts(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        with self._changed:
            for j in self._views["jobs"].values():
                if j.cleaned:
                    continue
                counts[j.status] = counts.get(j.status, 0) + 1
        return counts

    def max_job_id(self) -> int:
        with self._changed:
            queue: QueueView | None = self._views["queue"].get(QUEUE_KEY)
            floor = queue.job_id_floor if queue is not None else 0
            return max(max(self._views["jobs"], default=0), floor)

    def run(self, run_id: str) -> RunView | None:
        with self._changed:
            view = self._views["runs"].get(run_id)
        return None if view is None or view.status == DELETED else view

    def runs(
        self,
        status: str | None = None,
        tag: str | None = None,
        limit: int | None = None,
        archived: bool | None = None,
    ) -> list[RunView]:
        with self._changed:
            found = [
                r
                for r in sorted(
                    self._views["runs"].values(),
                    key=lambda r: (r.started_at, r.version),
                    reverse=True,
                )
                if (status is None or r.status == status)
                and (tag is None or tag in r.tags)
                and (archived is None or r.archived == archived)
                and r.status != DELETED
            ]
        return found[:limit] if limit is not None else found

    def runs_page(self, page: RunsPage) -> RunsPageResult:
        with self._changed:
            runs = list(self._views["runs"].values())
        return runs_page.in_memory(runs, page)

    def run_status_counts(self, archived: bool | None = False) -> dict[str, int]:
        with self._changed:
            runs = list(self._views["runs"].values())
        return runs_page.status_counts(runs, archived)

    def runs_by_prefix(self, prefix: str, limit: int = 10) -> list[RunView]:
        with self._changed:
            items = sorted(self._views["runs"].items())
        return [r for k, r in items if k.startswith(prefix) and r.status != DELETED][:limit]

    def worker(self, worker_id: str) -> WorkerView | None:
        with self._changed:
            return self._views["workers"].get(worker_id)

    def workers(self, heard_since: datetime | None = None) -> list[WorkerView]:
        with self._changed:
            found = sorted(self._views["workers"].values(), key=lambda w: w.id)
        return [w for w in found if heard_since is None or w.heartbeat_at >= heard_since]

    def queue_state(self) -> QueueView:
        view: QueueView | None = self._views["queue"].get(QUEUE_KEY)
        return view if view is not None else QueueView()
