"""``LocalLink``: the worker loop's way to the project's own store (``whirr worker``).

Every decision is the services' (``Jobs.claim``, ``Jobs.finish``...), taken in this
process inside the store's transaction. A watcher thread blocks on the store and wakes the
loop on any commit (a submit, a cancel request, a drain request), within milliseconds.
Before a claim transaction it takes a cheap read-only look with the same pure policy
(``whirr.projections.queue.pick``), so idle workers do not queue for the write lock.
"""

from __future__ import annotations

import contextlib
import os
import socket
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

from whirr.clock import utc_now
from whirr.projections.queue import Capacity, fits, pick
from whirr.services import Jobs, Workers
from whirr.services.jobs import CLAIM_WINDOW
from whirr.services.management import Management
from whirr.services.render import job_out, run_out
from whirr.store import EventStore, StoreWriteError
from whirr.sweeps import failfast
from whirr.wire import schemas
from whirr.worker.leftovers import Unrunnable
from whirr.worker.link import Ending, Unreachable

#: How long claims pause after the store could not write (a full or read-only disk).
CLAIM_PAUSE = 5.0


class LocalLink:
    """The queue of one project's store, decided by the services in this process."""

    def __init__(
        self,
        store: EventStore,
        *,
        lease_seconds: float,
        reserve_after: float,
        worker_id: str | None = None,
        say: Callable[[str], None] | None = None,
    ) -> None:
        self.store = store
        self._say = say or (lambda line: print(line, file=sys.stderr, flush=True))
        #: Claims wait until then (``time.monotonic()``) after a write failed.
        self._claims_paused_until = 0.0
        self.lease_seconds = lease_seconds
        self.reserve_after = reserve_after
        self.hostname = socket.gethostname()
        self.worker_id = worker_id or f"{self.hostname}-{os.getpid()}"
        self.jobs = Jobs(store, reserve_after=reserve_after)
        self.workers = Workers(store)
        self._capacity = Capacity()
        self._watching = False
        self._watcher: threading.Thread | None = None
        self._last_claim_found = False

    # -- lifecycle -----------------------------------------------------------
    def watch(self, wake: Callable[[], None]) -> None:
        self._watching = True
        cursor = self.store.head()

        def run() -> None:
            # A dedicated thread (and so its own SQLite connection) blocks on the log.
            nonlocal cursor
            while self._watching:
                if self.store.wait(cursor, timeout=0.5):
                    cursor = self.store.head()
                    wake()

        self._watcher = threading.Thread(target=run, name="store-watch", daemon=True)
        self._watcher.start()

    def close(self) -> None:
        self._watching = False
        if self._watcher is not None:
            self._watcher.join()
            self._watcher = None

    def register(self, capacity: Capacity, pid: int) -> None:
        self._capacity = capacity
        self.workers.register(
            self.worker_id,
            self.hostname,
            pid=pid,
            gpu_ids=capacity.gpu_ids,
            slots=capacity.slots,
        )

    def seen(self) -> None:
        with contextlib.suppress(StoreWriteError):  # a liveness mark: the next one will do
            self.workers.seen(self.worker_id)

    def stopped(self, reason: str) -> None:
        # This append also wakes the watcher thread, which then sees it should stop.
        self.workers.stopped(self.worker_id, reason)

    # -- claims --------------------------------------------------------------
    def claim(self, free: Capacity) -> schemas.Job | None:
        # While claims keep finding jobs the queue is busy: claim straight away. The
        # read-only look first only pays off when the queue may be empty or full of
        # jobs that do not fit, where it spares the other workers a write lock.
        if time.monotonic() < self._claims_paused_until:
            return None
        if not self._last_claim_found and not self._worth_claiming(free):
            return None
        try:
            job = self.jobs.claim(self.worker_id, self.lease_seconds, free=free)
        except StoreWriteError as exc:
            # A full or read-only disk: nothing was claimed (the transaction rolled back).
            # Pause claiming and retry, rather than stop with the running jobs orphaned.
            if not self._claims_paused_until:
                self._say(
                    f"Cannot claim jobs: {exc}. Pausing claims; retrying every {CLAIM_PAUSE:.0f}s."
                )
            self._claims_paused_until = time.monotonic() + CLAIM_PAUSE
            return None
        if self._claims_paused_until:
            self._say("The store takes writes again: claiming resumed.")
            self._claims_paused_until = 0.0
        self._last_claim_found = job is not None
        return None if job is None else job_out(job)

    def _worth_claiming(self, free: Capacity) -> bool:
        """A cheap read-only look (the same policy as the claim) before a write transaction."""
        now = utc_now()
        head = self.store.claimable_jobs(1, now)
        if not head:
            return False
        if self.store.queue_state().paused:
            return False
        args = (self._capacity, free, now, self.reserve_after)
        if pick(head, *args) is not None:
            return True
        return pick(self.store.claimable_jobs(CLAIM_WINDOW, now), *args) is not None

    def handed_over(self) -> schemas.Job | None:
        return None  # claims are answered at once: nothing is ever on its way

    @property
    def claiming(self) -> bool:
        return False

    def draining(self) -> bool:
        view = self.store.worker(self.worker_id)
        return view is not None and view.draining

    def sweep(self) -> list[schemas.Job]:
        return [job_out(job) for job in self.jobs.requeue_expired()]

    def nothing_left(self, capacity: Capacity) -> list[Unrunnable] | None:
        if self.store.jobs(["running"], limit=1):
            return None
        queued = self.store.jobs(["queued"])
        if any(fits(job, capacity) for job in queued):
            return None
        return [Unrunnable(job.id, job.gpus) for job in queued]

    # -- one attempt ---------------------------------------------------------
    def started(
        self, job: schemas.Job, pid: int, run_dir: Path, timeout: float | None = None
    ) -> None:
        with _retryable():
            self.jobs.started(
                job.id,
                self.worker_id,
                job.attempt,
                pid,
                run_dir=str(run_dir),
                hostname=self.hostname,
            )

    def heartbeat(self, job: schemas.Job, timeout: float | None = None) -> bool:
        with _retryable():
            view = self.jobs.heartbeat(job.id, self.worker_id, job.attempt, self.lease_seconds)
        return view.cancel_requested

    def cancels(self, job_ids: list[int]) -> set[int]:
        # A cancel lands within one wake-up: the watcher wakes the loop on its commit.
        found = (self.store.job(job_id) for job_id in job_ids)
        return {job.id for job in found if job is not None and job.cancel_requested}

    def finish(
        self,
        job: schemas.Job,
        ending: Ending,
        exit_code: int | None,
        error: str | None,
        usage: schemas.JobUsage | None = None,
    ) -> schemas.Job | None:
        with _retryable():
            done = self._finish(job, ending, exit_code, error, usage)
        if done is not None and done.status == "failed":  # did it pause its sweep?
            note = failfast.paused_by(self.store, job.id, job.tags)
            if note is not None:
                self._say(note)
        return done

    def _finish(
        self,
        job: schemas.Job,
        ending: Ending,
        exit_code: int | None,
        error: str | None,
        usage: schemas.JobUsage | None,
    ) -> schemas.Job | None:
        wid, attempt = self.worker_id, job.attempt
        if ending == "exited":
            view = self.jobs.finish(job.id, wid, attempt, exit_code, usage=usage)
        elif ending == "timed_out":
            view = self.jobs.finish(
                job.id, wid, attempt, exit_code, error=error, outcome="timed_out", usage=usage
            )
        elif ending == "interrupted":
            view = self.jobs.finish(
                job.id, wid, attempt, exit_code, error=error, outcome="cancelled", usage=usage
            )
        else:
            view = self.jobs.finish(
                job.id, self.worker_id, job.attempt, None, error=error, outcome="failed"
            )
        return job_out(view)

    def size_warning(
        self, job: schemas.Job, size: int, limit: int, timeout: float | None = None
    ) -> None:
        with _retryable():
            Management(self.store).size_warning(job.run_id, size, limit)

    def run(self, run_id: str) -> schemas.Run | None:
        view = self.store.run(run_id)
        return None if view is None else run_out(view)

    def base_env(self) -> dict[str, str]:
        return dict(os.environ)

    def fixed_env(self) -> dict[str, str]:
        return {}


@contextlib.contextmanager
def _retryable() -> Iterator[None]:
    """A write the store refused (full or read-only disk) is, to the loop, a queue it
    could not reach this time: it says so and retries, as with a server that is down."""
    try:
        yield
    except StoreWriteError as exc:
        raise Unreachable(str(exc)) from exc
