"""The size of a running job's run directory, watched against the worker's warning size
(``whirr worker --warn-run-dir-size``, ``WHIRR_WARN_RUN_DIR_SIZE``; default 10 GiB).

A job that writes checkpoints every epoch can fill a disk the whole machine shares. The
worker measures each running job's directory now and then and, the first time it is past
the size, logs a line and records ``run.size_warning`` (shown by ``whirr show``,
``whirr status ID`` and the dashboard's run page). Only a warning: nothing is stopped or
deleted. It warns again only after the directory fell below the size and passed it anew.

Cheap by construction: a measurement is a walk of ``lstat`` calls (no file is read, no
symlink followed) over at most ``MAX_ENTRIES`` entries (what it counted is then a lower
bound, enough to tell a directory that is already past the size), at most once per
``check_every`` seconds per job (2 heartbeats, at most a minute).
"""

from __future__ import annotations

import os
import time
from pathlib import Path

#: The default warning size.
DEFAULT_WARN_BYTES = 10 * 2**30
#: Entries one measurement looks at, at most (~0.1 s on a local disk).
MAX_ENTRIES = 100_000
#: The longest between two measurements of one job.
MAX_CHECK_EVERY = 60.0


def check_every(heartbeat_interval: float) -> float:
    """Seconds between two measurements of one job's directory."""
    return min(MAX_CHECK_EVERY, 2 * heartbeat_interval)


def measure(root: Path, max_entries: int = MAX_ENTRIES) -> tuple[int, bool]:
    """Bytes of the files under ``root`` (their sizes, symlinks not followed), and
    whether every entry was counted (False: stopped at ``max_entries``, a lower bound)."""
    total, seen = 0, 0
    pending = [str(root)]
    while pending:
        try:
            entries = os.scandir(pending.pop())
        except OSError:  # removed meanwhile, or not readable: nothing to count there
            continue
        with entries:
            for entry in entries:
                seen += 1
                if seen > max_entries:
                    return total, False
                try:
                    if entry.is_dir(follow_symlinks=False):
                        pending.append(entry.path)
                    else:
                        total += entry.stat(follow_symlinks=False).st_size
                except OSError:
                    continue
    return total, True


def human_bytes(n: int) -> str:
    """``10.0 GiB``, ``512.0 KiB``, ``12 B``."""
    size = float(n)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if size < 1024 or unit == "TiB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    raise AssertionError("unreachable")


class SizeWatch:
    """One attempt's directory against the warning size: when to measure, and whether a
    measurement is a new crossing."""

    def __init__(self, limit: int, every: float, now: float | None = None) -> None:
        self.limit = limit
        self.every = every
        self.next_check = (time.monotonic() if now is None else now) + every
        #: True while the directory is known to be past the size and this was recorded.
        self.warned = False

    def crossed(self, run_dir: Path, now: float) -> int | None:
        """Measure ``run_dir`` when due; the size when it is a new crossing (to record),
        else None."""
        if now < self.next_check:
            return None
        self.next_check = now + self.every
        size, _ = measure(run_dir)  # a lower bound past MAX_ENTRIES: enough to tell
        if size <= self.limit:
            self.warned = False  # below again: a later crossing is news again
            return None
        return None if self.warned else size

    def recorded(self) -> None:
        """The crossing was recorded (a failed record is tried at the next measurement)."""
        self.warned = True
