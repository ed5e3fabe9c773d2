"""The runs projection: one ``RunView`` per run, folded from run events."""

from collections.abc import Callable
from datetime import datetime
from operator import attrgetter
from typing import Any

import msgspec

from whirr.events import (
    Event,
    Recorded,
    RunArtifactSaved,
    RunFinished,
    RunSizeWarning,
    RunStarted,
    RunSummaryUpdated,
)
from whirr.projections.run_manage import DELETED, MANAGE_EVENTS, changes


class Artifact(msgspec.Struct, frozen=True):
    """A file saved into the run's artifacts directory."""

    path: str
    size: int
    saved_at: datetime
    sha256: str | None = None
    #: ``s3://bucket/key`` when stored in an artifact store; None: the run directory.
    location: str | None = None


class SizeWarning(msgspec.Struct, frozen=True, kw_only=True):
    """The run's directory passed the size its worker warns at (``run.size_warning``)."""

    size: int
    limit: int
    at: datetime


class RunView(msgspec.Struct, frozen=True, kw_only=True):
    """What is known about one run now."""

    id: str
    job_id: int | None
    name: str | None
    config: dict[str, Any]
    tags: list[str]
    status: str
    started_at: datetime
    finished_at: datetime | None = None
    hostname: str = ""
    pid: int | None = None
    run_dir: str
    summary: dict[str, Any] = {}
    artifacts: list[Artifact] = []
    git: dict[str, Any] | None = None
    exit_code: int | None = None
    error: str | None = None
    version: int = 0
    #: ``shared``, ``shipped`` or ``local`` (``RunStarted.files_mode``); None: not said.
    files_mode: str | None = None
    #: The run directory on the machine of a worker that ships the files.
    worker_run_dir: str | None = None
    #: The run's note (``whirr runs note``, ``run.note(...)``); empty: none.
    notes: str = ""
    #: Hidden from default listings (``whirr runs archive``); kept with its files.
    archived: bool = False
    #: The latest crossing of the worker's run-directory size warning; None: none.
    size_warning: SizeWarning | None = None

    @property
    def duration_seconds(self) -> float | None:
        """Wall time from start to finish, for finished runs."""
        if self.finished_at is None:
            return None
        return (self.finished_at - self.started_at).total_seconds()


def key(event: Event) -> str | None:
    """The run an event belongs to, or None."""
    return getattr(event, "run_id", None) if type(event) in HANDLES else None


def apply(view: RunView | None, rec: Recorded) -> RunView | None:
    """Fold one recorded event into the run's view (pure)."""
    step = STEPS.get(type(rec.event))
    return view if step is None else step(view, rec)


# One step per event type (``STEPS``), which a fold looks up once by the event's type
# and calls directly (``whirr.projections``). Every step keeps a deleted run's tombstone
# as it is, whatever comes after: readers never return it, and a later start with its id
# (refused by ``Runs.start``; an older client's, or one that raced the delete) must not
# bring the run back, live or in a rebuild. Every step but the start's ignores a run
# never started (None: no view).
def _started(view: RunView | None, rec: Recorded) -> RunView:
    event: RunStarted = rec.event  # type: ignore[assignment]
    if view is not None:
        if view.status == DELETED:
            return view
        # A second start for the same run: a tracked script attaching to its job's run,
        # or a resumed run. Keep what we had; fill in what the new start knows.
        return msgspec.structs.replace(
            view,
            name=event.name or view.name,
            config={**view.config, **event.config},
            tags=event.tags or view.tags,
            hostname=event.hostname or view.hostname,
            pid=event.pid if event.pid is not None else view.pid,
            git=event.git if event.git is not None else view.git,
            files_mode=event.files_mode or view.files_mode,
            worker_run_dir=event.worker_run_dir or view.worker_run_dir,
            status="running",
            finished_at=None,
            version=rec.position,
        )
    return RunView(
        id=event.run_id,
        job_id=event.job_id,
        name=event.name,
        config=event.config,
        tags=event.tags,
        status="running",
        started_at=event.started_at or rec.recorded_at,
        hostname=event.hostname,
        pid=event.pid,
        run_dir=event.run_dir,
        git=event.git,
        version=rec.position,
        files_mode=event.files_mode,
        worker_run_dir=event.worker_run_dir,
    )


def _managed(view: RunView | None, rec: Recorded) -> RunView | None:
    """A rename, tags, a note, an archive, a config update or the delete."""
    if view is None or view.status == DELETED:
        return view
    return msgspec.structs.replace(view, version=rec.position, **changes(view, rec.event))


def _summary_updated(view: RunView | None, rec: Recorded) -> RunView | None:
    if view is None or view.status == DELETED:
        return view
    event: RunSummaryUpdated = rec.event  # type: ignore[assignment]
    return msgspec.structs.replace(
        view, summary={**view.summary, **event.summary}, version=rec.position
    )


def _artifact_saved(view: RunView | None, rec: Recorded) -> RunView | None:
    if view is None or view.status == DELETED:
        return view
    event: RunArtifactSaved = rec.event  # type: ignore[assignment]
    kept = [a for a in view.artifacts if a.path != event.path]
    kept.append(
        Artifact(
            path=event.path,
            size=event.size,
            saved_at=rec.recorded_at,
            sha256=event.sha256,
            location=event.location,
        )
    )
    return msgspec.structs.replace(view, artifacts=kept, version=rec.position)


def _finished(view: RunView | None, rec: Recorded) -> RunView | None:
    if view is None or view.status == DELETED:
        return view
    if view.finished_at is not None and view.status != "running":
        return view  # the first true end wins (a worker and the script may both report)
    event: RunFinished = rec.event  # type: ignore[assignment]
    return msgspec.structs.replace(
        view,
        status=event.status,
        finished_at=event.finished_at or rec.recorded_at,
        exit_code=event.exit_code,
        error=event.error,
        version=rec.position,
    )


def _size_warning(view: RunView | None, rec: Recorded) -> RunView | None:
    if view is None or view.status == DELETED:
        return view
    event: RunSizeWarning = rec.event  # type: ignore[assignment]
    warning = SizeWarning(size=event.size, limit=event.limit, at=rec.recorded_at)
    return msgspec.structs.replace(view, size_warning=warning, version=rec.position)


#: The fold of each event type this projection handles: ``step(view, rec) -> view``.
STEPS: dict[type[Event], Callable[[RunView | None, Recorded], RunView | None]] = {
    RunStarted: _started,
    RunSummaryUpdated: _summary_updated,
    RunArtifactSaved: _artifact_saved,
    RunFinished: _finished,
    RunSizeWarning: _size_warning,
    **dict.fromkeys(MANAGE_EVENTS, _managed),
}
#: The event types this projection folds (a fold routes no other type to it).
HANDLES: frozenset[type[Event]] = frozenset(STEPS)
#: The key of an event of a type in ``HANDLES`` (``key`` without the type test).
key_of = attrgetter("run_id")
