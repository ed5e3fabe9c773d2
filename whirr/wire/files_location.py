"""Where a run's files really are, in one line (``whirr show``, the dashboard's run page).

A run's files are ``local`` (a project's own worker or direct run wrote them here),
``shared`` (a worker wrote them in place on the server's filesystem) or ``shipped`` (a
worker, or a direct run's shipper, sends them from its own machine to the server's copy).
For shipped files the line says how far they got, from the per-file states of
``GET /runs/{id}/files`` (``whirr.wire.shipping.RunFiles``), and a warning is given for
each file whose tail is missing and for the files not on the server yet: never a silent
empty answer. Pure: nothing but msgspec.
"""

from __future__ import annotations

from typing import Literal

from whirr.wire.schemas import Body
from whirr.wire.shipping import FilesMode, RunFiles, RunFileState

#: The state of a run's files as a whole: ``local``/``shared`` (written in place), else
#: the shipped files' worst state: ``missing_tail`` > ``live`` > ``pending`` > ``complete``.
FilesOverall = Literal["local", "shared", "live", "complete", "pending", "missing_tail"]
_WORDS = {
    "live": "live",
    "complete": "complete",
    "pending": "pending: nothing received yet",
    "missing_tail": "tail missing",
}


class FilesLocation(Body):
    """``whirr show --json``'s ``files_location`` and the dashboard's "Files" line."""

    mode: FilesMode
    state: FilesOverall
    #: ``local (<dir>)``, ``shared (<server dir>)`` or ``shipped from <host>:<dir> to the
    #: server (<state>)``.
    line: str
    #: Where readers find the files: the run directory here, or the server's copy.
    dir: str
    #: For shipped files: the machine and directory they are written on.
    hostname: str = ""
    worker_run_dir: str | None = None
    #: One sentence per problem: a missing tail, files still pending.
    warnings: list[str] = []
    files: dict[str, RunFileState] = {}


def locate_files(
    files: RunFiles | None, run_dir: str, *, mode: Literal["local", "shared"]
) -> FilesLocation:
    """Where the files are: ``files`` as the run's place describes them (None: a place
    that cannot say, e.g. an older server: then ``mode`` and ``run_dir`` alone)."""
    if files is None or files.mode != "shipped":
        said: Literal["local", "shared"] = mode
        if files is not None:
            said = "shared" if files.mode == "shared" else "local"
        return FilesLocation(
            mode=said,
            state=said,
            line=f"{said} ({run_dir})",
            dir=run_dir,
            files=files.files if files is not None else {},
        )
    states = {name: entry.state for name, entry in files.files.items()}
    overall = _overall(list(states.values()))
    source = f"{files.hostname or '?'}:{files.worker_run_dir or '?'}"
    return FilesLocation(
        mode="shipped",
        state=overall,
        line=f"shipped from {source} to the server ({_WORDS[overall]})",
        dir=run_dir,
        hostname=files.hostname,
        worker_run_dir=files.worker_run_dir,
        warnings=_warnings(files.files),
        files=files.files,
    )


def _overall(states: list[str]) -> FilesOverall:
    if "missing_tail" in states:
        return "missing_tail"
    if "live" in states:
        return "live"
    if not states or "pending" in states:
        return "pending"
    return "complete"


def _warnings(files: dict[str, RunFileState]) -> list[str]:
    said: list[str] = []
    for name, entry in files.items():
        if entry.state != "missing_tail":
            continue
        if entry.final_size is None:
            said.append(
                f"{name}: the attempt ended and its worker never said how much it wrote; "
                f"the server has {entry.attempt_size} bytes of it (its tail may be missing)"
            )
        else:
            said.append(
                f"{name}: its tail is missing (the worker wrote {entry.final_size} bytes, "
                f"the server has {entry.attempt_size})"
            )
    pending = [name for name, entry in files.items() if entry.state == "pending"]
    if pending:
        said.append(f"not on the server yet: {', '.join(pending)}")
    return said
