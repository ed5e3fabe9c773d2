"""One running attempt on a worker: its process, deadlines and what to do when.

The worker's loop asks each attempt for the next moment it needs looking after (a
heartbeat, the SIGKILL after a grace period, a timeout, a stuck-run check) and sleeps
until the earliest one, or until something wakes it sooner.
"""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path

from whirr.events.usage import JobUsage
from whirr.wire import schemas
from whirr.worker.link import Ending
from whirr.worker.run_size import SizeWatch
from whirr.worker.supervisor import JobProcess


class Attempt:
    """A job this worker is running now."""

    def __init__(
        self,
        job: schemas.Job,
        process: JobProcess,
        run_dir: Path,
        heartbeat_interval: float,
        renewed: float,
        size_watch: SizeWatch | None = None,
    ) -> None:
        self.job = job
        self.process = process
        self.run_dir = run_dir
        now = time.monotonic()
        self.next_heartbeat = now + heartbeat_interval
        #: When the last acknowledged renewal (or the claim) was sent, on the loop's
        #: ``fence_clock``: the job is stopped once ``fence_after`` has passed since.
        self.renewed = renewed
        #: True once the loop stopped it for want of renewals (its end is not reported).
        self.fenced = False
        #: When the job's timeout expires (monotonic), if it has one.
        self.deadline = None if job.timeout_seconds is None else now + job.timeout_seconds
        self.timed_out = False
        self.cancel_requested = False
        #: The worker's operator stopped it (second Ctrl+C): it ends ``cancelled``.
        self.interrupted = False
        self.stuck_reported = False
        #: The run directory against the worker's warning size (None: not watched).
        self.size_watch = size_watch
        # (size of metrics.jsonl, when it last changed); rows are only ever appended.
        self._metrics_seen = (-1, now)

    @property
    def id(self) -> int:
        """The job's id."""
        return self.job.id

    @property
    def gpu_ids(self) -> tuple[int, ...]:
        """The GPUs the claim gave this attempt (none: it holds a CPU slot)."""
        return tuple(self.job.gpu_ids)

    def timeout_due(self, now: float) -> bool:
        """True once the timeout passed and the stop has not begun yet."""
        return self.deadline is not None and not self.timed_out and now >= self.deadline

    def quiet_for(self, now: float) -> float:
        """Seconds since the run's metrics.jsonl last grew (or since the start)."""
        try:
            size = os.stat(self.run_dir / "metrics.jsonl").st_size
        except OSError:
            size = -1
        if size != self._metrics_seen[0]:
            self._metrics_seen = (size, now)
            self.stuck_reported = False  # it logged again: a later stall is news again
        return now - self._metrics_seen[1]


class Report:
    """An attempt that ended and whose end the queue has not taken yet (it could not be
    reached): sent again until it is, or until a lease has passed (the queue has given
    the job to another worker by then)."""

    def __init__(
        self,
        job: schemas.Job,
        run_dir: Path,
        ending: Ending,
        exit_code: int | None,
        error: str | None,
        give_up_at: float,
        usage: JobUsage | None = None,
    ) -> None:
        self.job = job
        self.run_dir = run_dir
        self.ending = ending
        self.exit_code = exit_code
        self.error = error
        self.give_up_at = give_up_at
        #: What the attempt used (cgroup accounting), sent with its end.
        self.usage = usage
        self.next_try = 0.0
        #: Set once the attempt's files are on the server (a worker that ships them);
        #: the end is reported after that. None: nothing to wait for.
        self.shipped: threading.Event | None = None
        #: While waiting for ``shipped``, the lease is renewed at this moment.
        self.next_heartbeat = 0.0
