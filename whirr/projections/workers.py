"""The workers projection: one ``WorkerView`` per worker, from worker and job events."""

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
    if type(event) in _HANDLED:
        return getattr(event, "worker_id", None) or None
    return None


def apply(view: WorkerView | None, rec: Recorded) -> WorkerView | None:
    """Fold one recorded event into the worker's view (pure)."""
    event = rec.event
    at = rec.recorded_at
    if isinstance(event, WorkerRegistered):
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
    if view is None:
        return None
    jobs = view.current_job_ids
    if isinstance(event, JobClaimed) and event.job_id not in jobs:
        jobs = [*jobs, event.job_id]
    elif isinstance(event, JobFinished | JobRequeued | JobRetryScheduled):
        jobs = [j for j in jobs if j != event.job_id]
    stopped = isinstance(event, WorkerStopped) or (
        view.stopped and not isinstance(event, WorkerSeen | JobClaimed | JobHeartbeat)
    )
    return msgspec.structs.replace(
        view,
        # A requeue is recorded by whoever noticed the lost lease, a drain request by the
        # user: neither says the worker is alive.
        heartbeat_at=(
            view.heartbeat_at if isinstance(event, JobRequeued | WorkerDrainRequested) else at
        ),
        current_job_ids=[] if isinstance(event, WorkerStopped) else jobs,
        stopped=stopped,
        version=rec.position,
        draining=view.draining or isinstance(event, WorkerDrainRequested),
    )


_HANDLED = frozenset(
    {
        WorkerRegistered,
        WorkerSeen,
        WorkerStopped,
        JobClaimed,
        JobHeartbeat,
        JobFinished,
        JobRequeued,
        JobRetryScheduled,
        WorkerDrainRequested,
    }
)
