"""The runs projection: one ``RunView`` per run, folded from run events."""

from collections.abc import Callable
from datetime import datetime
from typing import Any

import msgspec

from whirr.events import (
    Event,
    Recorded,
    RunArtifactSaved,
    RunFinished,
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
    event = rec.event
    if view is not None and view.status == DELETED:
        # The tombstone stays whatever comes after: readers never return it, and a later
        # start with its id (refused by ``Runs.start``; an older client's, or one that
        # raced the delete) must not bring the run back, live or in a rebuild.
        return view
    kind = type(event)
    if kind is RunStarted:
        return _started(view, event, rec)  # type: ignore[arg-type]
    if view is None:
        return None
    if kind in MANAGE_EVENTS:
        return msgspec.structs.replace(view, version=rec.position, **changes(view, event))
    step = _STEPS.get(kind)
    return view if step is None else step(view, event, rec)


# One step per event type, chosen by the event's type once (``_STEPS``) rather than by a
# chain of isinstance tests.
def _started(view: RunView | None, event: RunStarted, rec: Recorded) -> RunView:
    if view is not None:
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


def _summary_updated(view: RunView, event: RunSummaryUpdated, rec: Recorded) -> RunView:
    return msgspec.structs.replace(
        view, summary={**view.summary, **event.summary}, version=rec.position
    )


def _artifact_saved(view: RunView, event: RunArtifactSaved, rec: Recorded) -> RunView:
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


def _finished(view: RunView, event: RunFinished, rec: Recorded) -> RunView:
    if view.finished_at is not None and view.status != "running":
        return view  # the first true end wins (a worker and the script may both report)
    return msgspec.structs.replace(
        view,
        status=event.status,
        finished_at=event.finished_at or rec.recorded_at,
        exit_code=event.exit_code,
        error=event.error,
        version=rec.position,
    )


_STEPS: dict[type[Event], Callable[[RunView, Any, Recorded], RunView]] = {
    RunSummaryUpdated: _summary_updated,
    RunArtifactSaved: _artifact_saved,
    RunFinished: _finished,
}
#: The event types this projection folds (a fold routes no other type to it).
HANDLES: frozenset[type[Event]] = frozenset({RunStarted, *_STEPS, *MANAGE_EVENTS})
