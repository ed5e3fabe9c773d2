"""The workers projection: one ``WorkerView`` per worker, from worker and job events."""

from collections.abc import Callable
from datetime import datetime

import msgspec

from whirr.events import (
    Event,
    JobClaimed,
    JobFinished,
    JobHeartbeat,
    JobRequeued,
    JobRetryScheduled,
    Recorded,
    WorkerDrainRequested,
    WorkerRegistered,
    WorkerSeen,
    WorkerStopped,
)


class WorkerView(msgspec.Struct, frozen=True, kw_only=True):
    """A worker's last known state. Whether it is *online* depends on the clock: see
    ``is_online``; the projection itself never reads one."""

    id: str
    hostname: str
    pid: int | None
    gpu_ids: list[int]
    slots: int
    stopped: bool
    registered_at: datetime
    heartbeat_at: datetime
    current_job_ids: list[int] = []
    version: int = 0
    #: Asked to finish its jobs, claim nothing new and exit (``whirr drain``).
    draining: bool = False

    @property
    def status(self) -> str:
        """``stopped``, ``draining``, ``busy`` or ``idle`` (as recorded; see ``is_online``)."""
        if self.stopped:
            return "stopped"
        if self.draining:
            return "draining"
        return "busy" if self.current_job_ids else "idle"

    def is_online(self, now: datetime, timeout_seconds: float) -> bool:
        """True when the worker has not stopped and was heard from within the timeout."""
        return not self.stopped and (now - self.heartbeat_at).total_seconds() <= timeout_seconds


def key(event: Event) -> str | None:
    """The worker an event concerns, or None."""
    return key_of(event) if type(event) in HANDLES else None


def key_of(event: Event) -> str | None:
    """The worker an event of a type in ``HANDLES`` concerns (None: it names none)."""
    return event.worker_id or None  # type: ignore[attr-defined]


def apply(view: WorkerView | None, rec: Recorded) -> WorkerView | None:
    """Fold one recorded event into the worker's view (pure)."""
    step = STEPS.get(type(rec.event))
    return view if step is None else step(view, rec)


# One step per event type (``STEPS``), which a fold looks up once by the event's type
# and calls directly (``whirr.projections``): the liveness events (``worker.seen``,
# ``job.heartbeat``) are most of a long log. Every step but the registration's ignores
# a worker never registered (None: no view).
def _registered(view: WorkerView | None, rec: Recorded) -> WorkerView:
    event: WorkerRegistered = rec.event  # type: ignore[assignment]
    at = rec.recorded_at
    return WorkerView(
        id=event.worker_id,
        hostname=event.hostname,
        pid=event.pid,
        gpu_ids=event.gpu_ids,
        slots=event.slots,
        stopped=False,
        registered_at=at,
        heartbeat_at=at,
        version=rec.position,
    )


def _alive(view: WorkerView | None, rec: Recorded) -> WorkerView | None:
    """``worker.seen``, ``job.heartbeat``: heard from now, so not stopped."""
    if view is None:
        return None
    return msgspec.structs.replace(
        view, heartbeat_at=rec.recorded_at, stopped=False, version=rec.position
    )


def _claimed(view: WorkerView | None, rec: Recorded) -> WorkerView | None:
    if view is None:
        return None
    event: JobClaimed = rec.event  # type: ignore[assignment]
    jobs = view.current_job_ids
    if event.job_id not in jobs:
        jobs = [*jobs, event.job_id]
    return msgspec.structs.replace(
        view,
        heartbeat_at=rec.recorded_at,
        current_job_ids=jobs,
        stopped=False,
        version=rec.position,
    )


def _job_left(view: WorkerView | None, rec: Recorded) -> WorkerView | None:
    """A job of the worker's ended or backs off: it no longer holds it."""
    if view is None:
        return None
    event: JobFinished | JobRetryScheduled = rec.event  # type: ignore[assignment]
    jobs = [j for j in view.current_job_ids if j != event.job_id]
    return msgspec.structs.replace(
        view, heartbeat_at=rec.recorded_at, current_job_ids=jobs, version=rec.position
    )


def _requeued(view: WorkerView | None, rec: Recorded) -> WorkerView | None:
    # Recorded by whoever noticed the lost lease: it does not say the worker is alive.
    if view is None:
        return None
    event: JobRequeued = rec.event  # type: ignore[assignment]
    jobs = [j for j in view.current_job_ids if j != event.job_id]
    return msgspec.structs.replace(view, current_job_ids=jobs, version=rec.position)


def _stopped(view: WorkerView | None, rec: Recorded) -> WorkerView | None:
    if view is None:
        return None
    return msgspec.structs.replace(
        view, heartbeat_at=rec.recorded_at, current_job_ids=[], stopped=True, version=rec.position
    )


def _drain_requested(view: WorkerView | None, rec: Recorded) -> WorkerView | None:
    # Asked by the user: it does not say the worker is alive.
    if view is None:
        return None
    return msgspec.structs.replace(view, draining=True, version=rec.position)


#: The fold of each event type this projection handles: ``step(view, rec) -> view``.
STEPS: dict[type[Event], Callable[[WorkerView | None, Recorded], WorkerView | None]] = {
    WorkerRegistered: _registered,
    WorkerSeen: _alive,
    JobHeartbeat: _alive,
    JobClaimed: _claimed,
    JobFinished: _job_left,
    JobRetryScheduled: _job_left,
    JobRequeued: _requeued,
    WorkerStopped: _stopped,
    WorkerDrainRequested: _drain_requested,
}
#: The event types this projection folds (a fold routes no other type to it).
HANDLES: frozenset[type[Event]] = frozenset(STEPS)
