"""Checks a submit makes before anything is queued: can the command start, are the
scheduling settings sane. Each failure is an ``InvalidRequest`` with a message for the user."""

from __future__ import annotations

import os
from collections.abc import Sequence

from whirr.services.errors import InvalidRequest


def check_runnable(argv: Sequence[str], workdir: str) -> None:
    """Reject what cannot start: an empty command, a missing workdir or executable."""
    if not argv or not argv[0]:
        raise InvalidRequest("empty command: give the program to run, e.g. `python train.py`")
    if not os.path.isdir(workdir):
        raise InvalidRequest(f"working directory {workdir!r} does not exist")
    program = argv[0]
    if os.sep in program:
        path = program if os.path.isabs(program) else os.path.join(workdir, program)
        if not (os.path.isfile(path) and os.access(path, os.X_OK)):
            raise InvalidRequest(f"{program!r} is not an executable file (from {workdir})")
    elif _which(program) is None:
        raise InvalidRequest(f"command not found: {program!r}")


def check_scheduling(
    max_attempts: int,
    gpus: int | None,
    retries: int,
    retry_delay: float,
    timeout_seconds: float | None,
) -> None:
    """Reject scheduling settings that cannot mean anything."""
    if max_attempts < 1:
        raise InvalidRequest("max_attempts must be at least 1")
    if gpus is not None and gpus < 0:
        raise InvalidRequest("gpus must not be negative")
    if retries < 0 or retry_delay < 0:
        raise InvalidRequest("retries and retry_delay must not be negative")
    if timeout_seconds is not None and timeout_seconds <= 0:
        raise InvalidRequest("timeout must be positive")


def _which(program: str) -> str | None:
    """The executable ``program`` resolves to on PATH, like ``shutil.which``.

    Spelled out because importing shutil (and the bz2/lzma modules it pulls in) was a
    measurable part of every ``whirr submit``.
    """
    for directory in os.environ.get("PATH", os.defpath).split(os.pathsep):
        candidate = os.path.join(directory or os.curdir, program)
        if os.access(candidate, os.X_OK) and not os.path.isdir(candidate):
            return candidate
    return None
