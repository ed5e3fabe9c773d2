"""``RemoteLink``: the worker loop's way to a whirr server (``whirr worker --server``).

The server decides with the same services a local worker uses: a claim carries what the
worker has free (``free_gpu_ids``, ``free_slots``) and the server's ``Jobs.claim`` hands
out only what is free by that count and by its own. Run files go to
``<data-dir>/runs/<run_id>/``: on a filesystem the server shares (``files="shared"``) or
on this machine only, shipped to the server as they grow (``files="shipped"``,
``whirr.worker.shipping``); the ``started`` report tells the server which.

Claims long-poll, so a submit reaches an idle worker at once; the long-poll runs on a
thread of its own, so the loop goes on looking after the running jobs meanwhile, and the
job it brings back is handed to the loop on its next ``claim``. The server ends the poll
early when one of this worker's jobs ends (its free count grew: it asks again with the new
one) or when it is asked to drain. With ``claim_wait`` 0 (``--exit-when-empty``) claims are
made on the loop's thread and answered at once.

An unreachable server (or one failing with 5xx) is ``Unreachable`` to the loop: it tries
again after a pause, and stops a job none of whose heartbeats got through for a lease.
A 409 (or 404) on a report is ``LeaseLost``: another worker may run the job.
"""

from __future__ import annotations

import os
import socket
import threading
import time
from collections.abc import Callable
from pathlib import Path

import msgspec

from whirr.client import ServerError, ServerUnreachable, WhirrClient
from whirr.projections.queue import Capacity, fits_gpus
from whirr.services.errors import LeaseLost, NotFound, WhirrError
from whirr.sweeps import failfast
from whirr.wire import schemas
from whirr.wire.shipping import WorkerFilesMode
from whirr.worker.leftovers import Unrunnable
from whirr.worker.link import Ending, Unreachable

#: Longest a claim long-polls.
CLAIM_WAIT = 30.0
#: Pause after the server could not be reached, before claiming again.
RETRY_PAUSE = 2.0
#: Errors that mean "the server could not answer this time".
_DOWN = (ServerUnreachable, ServerError)


class RemoteLink:
    """A server's queue, over ``client``."""

    def __init__(
        self,
        client: WhirrClient,
        *,
        lease_seconds: float,
        claim_wait: float = CLAIM_WAIT,
        worker_id: str | None = None,
        files: WorkerFilesMode = "shared",
        say: Callable[[str], None] = lambda message: None,
    ) -> None:
        self.client = client
        #: Whether the server sees this worker's run files in place or gets them shipped.
        self.files = files
        self.lease_seconds = lease_seconds
        self.claim_wait = min(max(claim_wait, 0.0), 60.0)
        self.hostname = socket.gethostname()
        self.worker_id = worker_id or f"{self.hostname}-{os.getpid()}"
        self.say = say
        self._wake: Callable[[], None] = lambda: None
        self._cond = threading.Condition()
        self._asked: Capacity | None = None  # a claim for the poller to make
        self._polling = False  # a claim asked for and not answered yet
        self._handed: schemas.Job | None = None
        self._failure: WhirrError | None = None
        self._draining = False
        self._retry_at = 0.0
        self._closed = False
        self._poller: threading.Thread | None = None

    # -- lifecycle -----------------------------------------------------------
    def watch(self, wake: Callable[[], None]) -> None:
        self._wake = wake
        if self.claim_wait > 0:
            self._poller = threading.Thread(target=self._poll, name="claim-poll", daemon=True)
            self._poller.start()

    def close(self) -> None:
        with self._cond:
            self._closed = True
            self._cond.notify_all()
        # A poll in flight is not waited for: the process exits, the server sees the
        # connection closed (or the job's lease runs out): never lost, never run twice.

    def register(self, capacity: Capacity, pid: int) -> None:
        try:
            self.client.register_worker(
                self.worker_id, self.hostname, capacity.gpu_ids, slots=capacity.slots, pid=pid
            )
        except _DOWN as exc:
            raise Unreachable(str(exc)) from exc

    def seen(self) -> None:
        pass  # the server records an idle worker's long-polls

    def stopped(self, reason: str) -> None:
        try:
            self.client.unregister_worker(self.worker_id)
        except WhirrError as exc:
            self.say(f"Could not unregister: {exc}")

    # -- claims --------------------------------------------------------------
    def claim(self, free: Capacity) -> schemas.Job | None:
        if self.claim_wait <= 0:
            return self._claim_now(free)
        with self._cond:
            if self._failure is not None:
                raise self._failure
            if self._handed is not None:
                job, self._handed = self._handed, None
                return job
            # Ask only when nothing is on its way: a job handed over since the last ask
            # has been started, so ``free`` counts it.
            if not self._polling and not self._draining and time.monotonic() >= self._retry_at:
                self._asked = free
                self._polling = True
                self._cond.notify_all()
            return None

    def _claim_now(self, free: Capacity) -> schemas.Job | None:
        if self._draining or time.monotonic() < self._retry_at:
            return None
        try:
            return self._ask(self.client, free, 0.0)
        except Unreachable as exc:
            self.say(f"Server unreachable ({exc}); retrying in {RETRY_PAUSE:.0f}s.")
            self._retry_at = time.monotonic() + RETRY_PAUSE
            return None

    def _poll(self) -> None:
        # Its own client: one connection that may sit in a long-poll, apart from the
        # loop's heartbeats and reports.
        client = WhirrClient(
            self.client.url, token=self.client.token or "", timeout=self.client.timeout
        )
        while True:
            with self._cond:
                while self._asked is None and not self._closed:
                    self._cond.wait()
                free = self._asked
                if free is None:  # closed
                    break
                self._asked = None
            try:
                job = self._ask(client, free, self.claim_wait)
            except Unreachable as exc:
                self.say(f"Server unreachable ({exc}); retrying in {RETRY_PAUSE:.0f}s.")
                job = None
                with self._cond:
                    self._retry_at = time.monotonic() + RETRY_PAUSE
            except WhirrError as exc:  # a refused token, a server too old: the loop fails
                with self._cond:
                    self._failure = exc
                    self._polling = False
                self._wake()
                break
            with self._cond:
                self._handed = job
                self._polling = False
            self._wake()
        client.close()

    def _ask(self, client: WhirrClient, free: Capacity, wait: float) -> schemas.Job | None:
        try:
            answer = client.claim_answer(
                self.worker_id,
                lease_seconds=self.lease_seconds,
                wait=wait,
                free_gpu_ids=free.gpu_ids,
                free_slots=free.slots,
            )
        except _DOWN as exc:
            raise Unreachable(str(exc)) from exc
        if answer.draining:
            self._draining = True
        return answer.job

    def handed_over(self) -> schemas.Job | None:
        with self._cond:
            job, self._handed = self._handed, None
            return job

    @property
    def claiming(self) -> bool:
        with self._cond:
            return self._polling or self._handed is not None

    def draining(self) -> bool:
        return self._draining

    def sweep(self) -> list[schemas.Job]:
        return []  # the server requeues the jobs of lost workers itself

    def nothing_left(self, capacity: Capacity) -> list[Unrunnable] | None:
        try:
            status = self.client.status()
            if status.running:
                return None
            if not status.queued:
                return []
            queued = self.client.list_jobs("queued", limit=10_000)
        except _DOWN:
            return None
        if any(fits_gpus(job.gpus, capacity) for job in queued):
            return None
        return [Unrunnable(job.id, job.gpus) for job in queued]

    # -- one attempt ---------------------------------------------------------
    def started(
        self, job: schemas.Job, pid: int, run_dir: Path, timeout: float | None = None
    ) -> None:
        try:
            self.client.started(
                job.id,
                self.worker_id,
                job.attempt,
                pid,
                files=self.files,
                run_dir=str(run_dir),
                timeout=timeout,
            )
        except NotFound as exc:
            raise LeaseLost(str(exc)) from exc
        except _DOWN as exc:
            raise Unreachable(str(exc)) from exc

    def heartbeat(self, job: schemas.Job, timeout: float | None = None) -> bool:
        try:
            answer = self.client.heartbeat(
                job.id, self.worker_id, job.attempt, self.lease_seconds, timeout=timeout
            )
        except NotFound as exc:
            raise LeaseLost(str(exc)) from exc
        except _DOWN as exc:
            raise Unreachable(str(exc)) from exc
        return answer.cancel_requested

    def cancels(self, job_ids: list[int]) -> set[int]:
        return set()  # heartbeats carry cancel requests

    def finish(
        self,
        job: schemas.Job,
        ending: Ending,
        exit_code: int | None,
        error: str | None,
        usage: schemas.JobUsage | None = None,
    ) -> schemas.Job | None:
        c, wid = self.client, self.worker_id
        try:
            if ending == "exited":
                code = -1 if exit_code is None else exit_code
                c.complete(job.id, wid, job.attempt, code, run_id=job.run_id, usage=usage)
            elif ending == "timed_out":
                c.fail(
                    job.id, wid, job.attempt, error or "", exit_code, timed_out=True, usage=usage
                )
            elif ending == "interrupted":
                c.fail(
                    job.id, wid, job.attempt, error or "", exit_code, interrupted=True, usage=usage
                )
            else:
                c.fail(job.id, wid, job.attempt, f"could not start: {error}")
        except NotFound as exc:
            raise LeaseLost(str(exc)) from exc
        except _DOWN as exc:
            raise Unreachable(str(exc)) from exc
        if ending == "exited" and exit_code != 0:
            self._tell_paused(job)
        try:
            return c.get_job(job.id)
        except WhirrError:
            return None

    def _tell_paused(self, job: schemas.Job) -> None:
        """Say so when the failed end just recorded paused the job's sweep (fail-fast)."""
        for name in failfast.sweeps_of(job.tags):
            try:
                sweep = self.client.get_sweep(name)
            except (WhirrError, *_DOWN):
                continue  # a hand-made tag, or the server went away: nothing to tell
            if sweep.paused is not None and job.id in sweep.paused_after:
                self.say(failfast.worker_note(name, sweep.paused))

    def size_warning(
        self, job: schemas.Job, size: int, limit: int, timeout: float | None = None
    ) -> None:
        try:
            self.client.run_size_warning(
                job.id, self.worker_id, job.attempt, size, limit, timeout=timeout
            )
        except _DOWN as exc:
            raise Unreachable(str(exc)) from exc

    def run(self, run_id: str) -> schemas.Run | None:
        try:
            return self.client.get_run(run_id)
        except WhirrError:
            return None

    def base_env(self) -> dict[str, str]:
        env = dict(os.environ)
        # Never this worker's own token: whirr.init() in the job records its run with the
        # run token the claim handed over (the loop sets it; it can write only that run,
        # only during this attempt); a server that sent none gives the job none.
        env.pop("WHIRR_TOKEN", None)
        return env

    def fixed_env(self) -> dict[str, str]:
        # WHIRR_FILES: in "shipped" mode the tracking library records no artifact the
        # server cannot see; the shipper records each one once it is uploaded.
        return {"WHIRR_SERVER_URL": self.client.url, "WHIRR_FILES": self.files}

    def last_metrics_line(self, run_id: str) -> bytes | None:
        """The server's last metrics row of ``run_id``, as a JSON line (None: none, or
        the server could not tell)."""
        try:
            rows = self.client.tail(run_id, "metrics", rows=1)
        except WhirrError as exc:
            self.say(f"Run {run_id}: could not read its last metrics row ({exc}).")
            return None
        return msgspec.json.encode(rows[-1]) + b"\n" if rows else None
