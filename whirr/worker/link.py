"""What the worker loop needs from a queue: ``WorkerLink``, and the two ways it is reached.

``WorkerLoop`` (``whirr.worker.loop``) runs jobs; a link is its only way to the queue.
``LocalLink`` (``whirr.worker.local``) decides through the project's store and services in
this process; ``RemoteLink`` (``whirr.worker.remote``) asks a server over HTTP. Both hand
out the wire ``Job`` and ``Run`` (``whirr.wire.schemas``), so the loop has one type of each
whichever way it works.

Errors a link raises: ``LeaseLost`` when the worker no longer holds the attempt it reports
on (another worker may run it: kill the child, report nothing), ``Unreachable`` when the
queue could not be asked this time (try again later; after a whole lease without a renewal
the job is stopped, because the queue has handed it out again by then).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Literal, Protocol

from whirr.projections.queue import Capacity
from whirr.wire import schemas
from whirr.worker.leftovers import Unrunnable

#: How an attempt ended, as the loop reports it: its process exited (the exit status
#: decides), the loop stopped it for running past its time limit, it never started, or
#: the worker's operator interrupted it (a second Ctrl+C: it ends ``cancelled``, never
#: retried).
Ending = Literal["exited", "timed_out", "not_started", "interrupted"]


class Unreachable(Exception):
    """The queue could not be reached this time (a server down or far away)."""


class WorkerLink(Protocol):
    """The queue as one worker sees it. Every method but ``claim`` and ``watch`` runs on
    the loop's thread only; ``claim`` never blocks for long (a link that long-polls does
    it on a thread of its own and hands the job over on a later call)."""

    #: The worker's id, as it registered.
    worker_id: str
    #: This machine's name (recorded with each run).
    hostname: str

    def watch(self, wake: Callable[[], None]) -> None:
        """Begin calling ``wake`` whenever there may be something new to claim, a cancel,
        a drain or a job for the loop (from any thread)."""

    def close(self) -> None:
        """Stop waking the loop and let go of what ``watch`` started."""

    def register(self, capacity: Capacity, pid: int) -> None:
        """Announce the worker with all it offers. Raises ``Unreachable`` (the loop
        tries again)."""

    def seen(self) -> None:
        """Record that an idle worker is alive."""

    def stopped(self, reason: str) -> None:
        """Record that the worker shut down."""

    def claim(self, free: Capacity) -> schemas.Job | None:
        """A job (with the GPUs it was given in ``gpu_ids``) that fits ``free``, or None.
        A job returned is held under a fresh lease; raises ``Unreachable``."""

    def handed_over(self) -> schemas.Job | None:
        """A job a claim asked for earlier got, without asking for more (a draining
        worker takes it: it holds the job already)."""

    @property
    def claiming(self) -> bool:
        """True while a claim asked for earlier may still hand over a job."""

    def draining(self) -> bool:
        """True once the worker was asked to drain (``whirr drain``)."""

    def sweep(self) -> list[schemas.Job]:
        """Requeue the jobs of lost workers (whose lease ran out); returns them. A link
        whose queue does this itself (a server) returns []."""

    def nothing_left(self, capacity: Capacity) -> list[Unrunnable] | None:
        """None while a worker offering ``capacity`` may still get work: a job runs
        anywhere (a lost worker's job may still come back to the queue) or a queued one
        fits. Otherwise the queued jobs it could never run (empty: the queue is empty)."""

    def started(
        self, job: schemas.Job, pid: int, run_dir: Path, timeout: float | None = None
    ) -> None:
        """The job's process runs. Raises ``LeaseLost`` or ``Unreachable`` (also when no
        answer came within ``timeout`` seconds)."""

    def heartbeat(self, job: schemas.Job, timeout: float | None = None) -> bool:
        """Renew the lease; True when a cancel was requested. Raises ``LeaseLost`` or
        ``Unreachable`` (also when no answer came within ``timeout`` seconds)."""

    def cancels(self, job_ids: list[int]) -> set[int]:
        """Which of ``job_ids`` have a cancel pending, when the link can tell between
        heartbeats (else the empty set: heartbeats carry cancels too)."""

    def finish(
        self,
        job: schemas.Job,
        ending: Ending,
        exit_code: int | None,
        error: str | None,
        usage: schemas.JobUsage | None = None,
    ) -> schemas.Job | None:
        """Report how the attempt ended (and what it used, where its containment accounted
        it); returns the job as it is now (None when the link cannot tell). Raises
        ``LeaseLost`` or ``Unreachable``."""

    def size_warning(
        self, job: schemas.Job, size: int, limit: int, timeout: float | None = None
    ) -> None:
        """Record that the job's run directory measured ``size`` bytes, past ``limit``
        (``run.size_warning``). Raises ``Unreachable`` (also when no answer came within
        ``timeout`` seconds; the loop tries again at the next measurement)."""

    def run(self, run_id: str) -> schemas.Run | None:
        """The run, as recorded (for its final ``meta.json``), or None."""

    def base_env(self) -> dict[str, str]:
        """The environment a job starts from, before its own ``env`` is laid over it."""

    def fixed_env(self) -> dict[str, str]:
        """Variables no job's ``env`` may override (besides the ``WHIRR_*`` ids)."""
