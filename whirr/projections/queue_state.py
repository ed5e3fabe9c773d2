"""The queue-state projection: whether the queue is paused, and the job ids the log gave
out that no job view shows (one view, key ``"queue"``)."""

import re
from collections.abc import Callable
from datetime import datetime

import msgspec

from whirr.events import (
    Event,
    ProjectCreated,
    ProjectRestored,
    QueuePaused,
    QueueResumed,
    Recorded,
    Unreadable,
)

#: The one key of this projection.
QUEUE_KEY = "queue"


class QueueView(msgspec.Struct, frozen=True, kw_only=True):
    """The queue as a whole. ``paused``: workers claim nothing new (running jobs go on)."""

    id: str = QUEUE_KEY
    paused: bool = False
    since: datetime | None = None
    reason: str = ""
    version: int = 0
    #: New jobs are numbered above this (and above every job view): the largest job id
    #: of an undecodable event on a job's stream (replay skips it, so no job view shows
    #: that id, but the log gave it out, and maybe its run directory), or of an earlier
    #: history (``project.created``'s ``job_id_floor``). Kept here so that numbering a
    #: job stays one look-up, never a scan of the log.
    job_id_floor: int = 0


_JOB_STREAM = re.compile(r"job-(\d{1,18})")


def key(event: Event) -> str | None:
    """``"queue"`` for queue-wide events (and those that raise the job id floor), else
    None. An ``Unreadable`` is seen only here: the other projections skip it."""
    return QUEUE_KEY if type(event) in HANDLES else None


def apply(view: QueueView | None, rec: Recorded) -> QueueView | None:
    """Fold a pause, a resume or a job id floor into the queue's view (pure)."""
    event = rec.event
    floor = view.job_id_floor if view is not None else 0
    if isinstance(event, QueuePaused):
        return QueueView(
            paused=True,
            since=rec.recorded_at,
            reason=event.reason,
            version=rec.position,
            job_id_floor=floor,
        )
    if isinstance(event, QueueResumed):
        return QueueView(
            paused=False, since=rec.recorded_at, version=rec.position, job_id_floor=floor
        )
    used = 0
    if isinstance(event, ProjectCreated | ProjectRestored):
        used = event.job_id_floor
    elif isinstance(event, Unreadable) and (m := _JOB_STREAM.fullmatch(rec.stream)):
        used = int(m.group(1))
    if used > floor:
        return msgspec.structs.replace(view or QueueView(), job_id_floor=used)
    return view


#: The fold of each event type this projection handles: ``step(view, rec) -> view``.
STEPS: dict[type[Event], Callable[[QueueView | None, Recorded], QueueView | None]] = dict.fromkeys(
    (QueuePaused, QueueResumed, ProjectCreated, ProjectRestored, Unreadable), apply
)
#: The event types this projection folds (a fold routes no other type to it).
HANDLES: frozenset[type[Event]] = frozenset(STEPS)


def key_of(event: Event) -> str:
    """The key of an event of a type in ``HANDLES``: the one view's."""
    return QUEUE_KEY
