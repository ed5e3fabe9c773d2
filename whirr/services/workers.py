"""Worker decisions: register, seen, drain, stopped."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta

from whirr.events import (
    Pending,
    WorkerDrainRequested,
    WorkerRegistered,
    WorkerSeen,
    WorkerStopped,
    worker_stream,
)
from whirr.projections import WorkerView
from whirr.services.errors import InvalidState, NotFound
from whirr.store import EventStore, ViewReader

#: A worker not heard from (seen, a heartbeat, registered or stopped) for this long is
#: forgotten: left out of ``whirr workers``, ``GET /workers`` and the status counts
#: unless all are asked for. Its view stays (a rebuild gives the same views); listings
#: read workers through an index on when each was last heard from, so the ids restarted
#: workers leave behind do not slow them down. The default of the setting (a project's
#: ``forget_workers_after``, ``whirr server --forget-workers-after``).
FORGET_WORKERS_AFTER = timedelta(days=7)


def remembered_since(now: datetime, forget_after: float | None = None) -> datetime:
    """The cutoff of the workers listings show by default at ``now``: workers heard
    from within ``forget_after`` seconds (None: ``FORGET_WORKERS_AFTER``)."""
    if forget_after is None:
        return now - FORGET_WORKERS_AFTER
    return now - timedelta(seconds=forget_after)


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

    def drain(self, worker_id: str) -> WorkerView:
        """Ask a worker to finish its running jobs, claim nothing new, and exit."""

        def decide(reader: ViewReader) -> list[Pending]:
            worker = reader.worker(worker_id)
            if worker is None:
                raise NotFound(f"no worker {worker_id!r} (see `whirr workers`)")
            if worker.stopped:
                raise InvalidState(f"worker {worker_id!r} has stopped already")
            if worker.draining:
                return []
            return [Pending(worker_stream(worker_id), WorkerDrainRequested(worker_id=worker_id))]

        self.store.transact(decide)
        return self.get(worker_id)

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
