"""Run and job management decisions: rename, tag, untag, note, archive, delete a run,
record config set after it started, and ``clean`` ended jobs out of the queue's views.

Each decision runs under the store's write lock (``transact``), so it sees the run as it
is when its event is appended: a delete cannot race a run's restart, a clean cannot drop
a job a retry just requeued. Removing a deleted run's files is the caller's part (the
facade knows where the files are).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime, timedelta
from typing import Any

from whirr.events import (
    Event,
    JobCleaned,
    Pending,
    RunArchived,
    RunConfigUpdated,
    RunDeleted,
    RunNoteSet,
    RunRenamed,
    RunSizeWarning,
    RunTagsAdded,
    RunTagsRemoved,
    RunUnarchived,
    job_stream,
    run_stream,
)
from whirr.projections import RunView
from whirr.projections.jobs import FINISHED_STATUSES
from whirr.services.errors import InvalidRequest, InvalidState, NotFound
from whirr.store import EventStore, ViewReader


class Management:
    """Management events over one store."""

    def __init__(self, store: EventStore) -> None:
        self.store = store

    def _record(self, run_id: str, event: Event) -> RunView:
        """Append ``event`` for a run that exists (``NotFound`` otherwise); the new view."""

        def decide(reader: ViewReader) -> list[Pending]:
            if reader.run(run_id) is None:
                raise NotFound(f"no run {run_id!r}")
            return [Pending(run_stream(run_id), event)]

        self.store.transact(decide)
        view = self.store.run(run_id)
        if view is None:  # deleted by the event itself (delete has its own method)
            raise NotFound(f"no run {run_id!r}")
        return view

    def rename(self, run_id: str, name: str) -> RunView:
        """Give the run a new name."""
        name = name.strip()
        if not name:
            raise InvalidRequest("give the run a name that is not empty")
        return self._record(run_id, RunRenamed(run_id=run_id, name=name))

    def add_tags(self, run_id: str, tags: Sequence[str]) -> RunView:
        """Add ``tags`` to the run (ones it has are kept once)."""
        return self._record(run_id, RunTagsAdded(run_id=run_id, tags=_tags(tags)))

    def remove_tags(self, run_id: str, tags: Sequence[str]) -> RunView:
        """Remove ``tags`` from the run."""
        return self._record(run_id, RunTagsRemoved(run_id=run_id, tags=_tags(tags)))

    def note(self, run_id: str, text: str, *, append: bool = False) -> RunView:
        """Set the run's note to ``text`` (or add it as a paragraph, with ``append``)."""
        return self._record(run_id, RunNoteSet(run_id=run_id, text=text, append=append))

    def set_archived(self, run_id: str, archived: bool) -> RunView:
        """Archive the run (hidden from default listings) or bring it back."""
        event = RunArchived(run_id=run_id) if archived else RunUnarchived(run_id=run_id)
        return self._record(run_id, event)

    def update_config(self, run_id: str, config: dict[str, Any]) -> RunView:
        """Merge ``config`` into the run's config (values set after it started)."""
        return self._record(run_id, RunConfigUpdated(run_id=run_id, config=dict(config)))

    def size_warning(self, run_id: str, size: int, limit: int) -> RunView:
        """Record that the run's directory measured ``size`` bytes, past ``limit`` (its
        worker's ``--warn-run-dir-size``); the worker says it once per crossing."""
        return self._record(run_id, RunSizeWarning(run_id=run_id, size=size, limit=limit))

    def delete(self, run_id: str, *, live: Callable[[RunView], RunView] | None = None) -> RunView:
        """Record that the run is deleted (and its ended job cleaned out of the queue's
        views, ``clean``); its view before. Refused while its files may still be written:
        its job is queued or running (again), or it is a direct run still ``running``.
        ``live`` gives a direct run's status as this host sees it (``Runs.live``: a run
        whose process is gone is ``crashed``, and may go); without it, or for another
        host's run, the recorded status decides. Both are asked under the write lock."""

        found: list[RunView] = []

        def decide(reader: ViewReader) -> list[Pending]:
            view = reader.run(run_id)
            if view is None:
                raise NotFound(f"no run {run_id!r}")
            job = reader.job(view.job_id) if view.job_id is not None else None
            if job is not None and job.status in ("queued", "running"):
                raise InvalidState(
                    f"run {run_id} is still in use: its job #{job.id} is {job.status} "
                    f"(cancel it first: whirr cancel {job.id})"
                )
            seen = live(view) if live is not None and view.job_id is None else view
            if view.job_id is None and seen.status == "running":
                raise InvalidState(
                    f"run {run_id} is still running and writing its files; "
                    "delete it once it has ended"
                )
            found.append(view)
            deleted = [Pending(run_stream(run_id), RunDeleted(run_id=run_id))]
            if job is not None and not job.cleaned:
                # Its job (ended) leaves the queue's views too: nothing shows a run that
                # is gone; the job keeps its id, and `whirr status ID` still finds it.
                deleted.append(Pending(job_stream(job.id), JobCleaned(job_id=job.id)))
            return deleted

        self.store.transact(decide)
        return found[0]

    def clean(
        self,
        *,
        older_than: timedelta | None = None,
        statuses: Sequence[str] | None = None,
        now: datetime,
    ) -> list[int]:
        """Drop ended jobs from the queue's views (listings, status counts): those that
        ended more than ``older_than`` ago, of ``statuses`` (every ended status when
        None). Their runs stay. Returns the job ids dropped, oldest first."""
        wanted = list(statuses) if statuses else list(FINISHED_STATUSES)
        unknown = [s for s in wanted if s not in FINISHED_STATUSES]
        if unknown:
            raise InvalidRequest(
                f"cannot clean {', '.join(unknown)} jobs: only ended ones "
                f"({', '.join(FINISHED_STATUSES)})"
            )
        cutoff = now - older_than if older_than is not None else None
        cleaned: list[int] = []

        def decide(reader: ViewReader) -> list[Pending]:
            cleaned.clear()
            for job in reversed(reader.jobs(wanted)):
                finished = job.finished_at
                if cutoff is not None and (finished is None or finished > cutoff):
                    continue
                cleaned.append(job.id)
            return [Pending(job_stream(j), JobCleaned(job_id=j)) for j in cleaned]

        self.store.transact(decide)
        return cleaned


def _tags(tags: Sequence[str]) -> list[str]:
    kept = [t.strip() for t in tags if t.strip()]
    if not kept:
        raise InvalidRequest("give at least one tag that is not empty")
    return list(dict.fromkeys(kept))
