"""Small file chores shared by the store's writers of side files (checkpoints, archive
segments): each builds a ``.scratch-<pid>-...`` file, fsyncs it and renames it into place,
so a killed writer leaves at most a scratch file behind, removed by the next one."""

from __future__ import annotations

import contextlib
import os
from pathlib import Path


def pid_alive(pid: int) -> bool:
    """Whether a process with this id exists (another user's counts)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def fsync_path(path: Path) -> None:
    """fsync a file or a folder by path (a folder: so a rename in it is durable)."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def remove_stale_scratches(where: Path) -> None:
    """Remove the scratch files in ``where`` whose writer is gone (killed half-way)."""
    for path in where.glob(".scratch-*"):
        pid = path.name.split("-")[1]
        if pid.isdigit() and not pid_alive(int(pid)):
            with contextlib.suppress(FileNotFoundError):
                path.unlink()
