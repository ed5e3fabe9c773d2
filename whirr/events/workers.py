"""Events in a worker's life: registered, seen, drain requested, stopped."""

from whirr.events.base import Event
from whirr.events.bounds import GpuId, Pid, Slots


class WorkerRegistered(Event, frozen=True, tag="worker.registered"):
    """A worker came up and announced what it offers."""

    worker_id: str
    hostname: str
    pid: Pid | None = None
    gpu_ids: list[GpuId] = []
    slots: Slots = 1


class WorkerSeen(Event, frozen=True, tag="worker.seen"):
    """A worker is alive (idle heartbeat)."""

    worker_id: str


class WorkerStopped(Event, frozen=True, tag="worker.stopped"):
    """A worker shut down (or was declared gone)."""

    worker_id: str
    reason: str = ""


class WorkerDrainRequested(Event, frozen=True, tag="worker.drain_requested"):
    """Somebody asked the worker to finish its running jobs, take no new one, and exit."""

    worker_id: str
