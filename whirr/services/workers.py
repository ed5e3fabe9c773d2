"""Worker decisions: register, seen, stopped."""

from __future__ import annotations

from collections.abc import Sequence

from whirr.events import Pending, WorkerRegistered, WorkerSeen, WorkerStopped, worker_stream
from whirr.projections import WorkerView
from whirr.services.errors import NotFound
from whirr.store import EventStore


class Workers:
    """The worker decisions over one store."""

    def __init__(self, store: EventStore) -> None:
        self.store = store

    def register(
        self,
        worker_id: str,
        hostname: str,
        *,
        pid: int | None = None,
        gpu_ids: Sequence[int] = (),
        slots: int = 1,
    ) -> WorkerView:
        """Announce a worker (again, after a restart: the view starts afresh)."""
        event = WorkerRegistered(
            worker_id=worker_id, hostname=hostname, pid=pid, gpu_ids=list(gpu_ids), slots=slots
        )
        self.store.append([Pending(worker_stream(worker_id), event)])
        return self.get(worker_id)

    def seen(self, worker_id: str) -> None:
        """Record that an idle worker is alive."""
        self.store.append([Pending(worker_stream(worker_id), WorkerSeen(worker_id=worker_id))])

    def stopped(self, worker_id: str, reason: str = "") -> None:
        """Record that a worker shut down."""
        event = WorkerStopped(worker_id=worker_id, reason=reason)
        self.store.append([Pending(worker_stream(worker_id), event)])

    def get(self, worker_id: str) -> WorkerView:
        """One worker, or ``NotFound``."""
        worker = self.store.worker(worker_id)
        if worker is None:
            raise NotFound(f"no worker {worker_id!r}")
        return worker
