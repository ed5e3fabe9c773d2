"""One running attempt on a local worker: its process, deadlines and what to do when.

The worker's loop asks each attempt for the next moment it needs looking after (a
heartbeat, the SIGKILL after a grace period, a timeout, a stuck-run check) and sleeps
until the earliest one, or until something wakes it sooner.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

from whirr.projections import JobView
from whirr.worker.supervisor import JobProcess


class Attempt:
    """A job this worker is running now."""

    def __init__(
        self,
        job: JobView,
        process: JobProcess,
        run_dir: Path,
        gpu_ids: tuple[int, ...],
        heartbeat_interval: float,
    ) -> None:
        self.job = job
        self.process = process
        self.run_dir = run_dir
        self.gpu_ids = gpu_ids
        now = time.monotonic()
        self.next_heartbeat = now + heartbeat_interval
        #: When the job's timeout expires (monotonic), if it has one.
        self.deadline = None if job.timeout_seconds is None else now + job.timeout_seconds
        self.timed_out = False
        self.stuck_reported = False
        # (size of metrics.jsonl, when it last changed); rows are only ever appended.
        self._metrics_seen = (-1, now)

    @property
    def id(self) -> int:
        """The job's id."""
        return self.job.id

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
