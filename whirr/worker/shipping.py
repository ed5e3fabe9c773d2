"""A remote worker's run files on their way to a server that does not share its disk.

``open_worker`` decides at start whether the worker shares the server's filesystem (its
``--data-dir`` holds the server's ``server-id``) or ships (``whirr.shipping``); only in the
second case does the loop get a ``JobShipping``. The loop calls it at four moments of an
attempt: before the spawn (``prepare``: where this attempt begins in each local stream),
once the start is reported (``begin``), when the process ended (``end``: the loop reports
the end once the returned event is set) and after the end was reported and ``meta.json``
got its final state (``release``).
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from pathlib import Path

from whirr.filemodes import open_private
from whirr.shipping import scan
from whirr.shipping.shipper import Shipper
from whirr.wire import schemas


class JobShipping:
    """Ships every job's run files through ``shipper`` (started here)."""

    def __init__(self, shipper: Shipper, last_metrics_line: Callable[[str], bytes | None]) -> None:
        self.shipper = shipper
        self._last_metrics_line = last_metrics_line

    def open(self, wake: Callable[[], None]) -> list[str]:
        """Start shipping (``wake`` is called when an ended attempt's files are on the
        server); returns the runs a killed predecessor left to finish."""
        self.shipper.on_flushed = lambda run_id: wake()
        resumed = self.shipper.resume()
        self.shipper.start()
        return resumed

    def prepare(self, job: schemas.Job, run_dir: Path) -> dict[str, int]:
        """Where attempt ``job.attempt`` begins in each local stream: what is there now
        (an earlier attempt's bytes) is not shipped again. A later attempt on a machine
        that has no metrics of the run yet first gets the server's last row, so the job's
        ``_idx`` continues from it; that seed line is local only."""
        if job.attempt > 1 and scan.local_size(run_dir, "metrics.jsonl") == 0:
            line = self._last_metrics_line(job.run_id)
            if line:
                seed_metrics(run_dir / "metrics.jsonl", line)
        return scan.stream_sizes(run_dir)

    def begin(self, job: schemas.Job, run_dir: Path, local_start: dict[str, int]) -> None:
        """The attempt runs: ship its files from now on."""
        self.shipper.add(job.run_id, run_dir, job.attempt, local_start)

    def end(self, job: schemas.Job) -> threading.Event:
        """The attempt's process ended; set once its files are on the server (bounded)."""
        return self.shipper.end(job.run_id)

    def release(self, job: schemas.Job) -> None:
        """The end was reported and ``meta.json`` rewritten: ship it, then forget the run."""
        self.shipper.release(job.run_id)

    def close(self, timeout: float) -> None:
        """Ship what is left for at most ``timeout`` seconds (ledgers keep the rest)."""
        self.shipper.close(timeout)


def seed_metrics(path: Path, line: bytes) -> None:
    """Write ``line`` (one complete metrics row) into an empty ``metrics.jsonl``."""
    fd = open_private(path, os.O_WRONLY | os.O_APPEND)
    try:
        if os.fstat(fd).st_size == 0:
            os.write(fd, line if line.endswith(b"\n") else line + b"\n")
    finally:
        os.close(fd)
