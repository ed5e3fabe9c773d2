"""The seam between whirr's edges and where its data lives.

Every edge (the CLI, ``whirr watch``, the dashboard, scripts) asks one ``Whirr``
(``protocol.py``) for what it shows and changes. ``open_whirr`` picks the place, with one
precedence everywhere: an explicit server URL (``--server``), else ``WHIRR_SERVER_URL``,
else the project enclosing the working directory. ``StoreWhirr`` (``local.py``) answers
from an event store and its run files; ``HttpWhirr`` (``http.py``) asks a whirr server,
which answers with a ``StoreWhirr`` of its own. No edge branches on which it got.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from whirr.facade.protocol import Whirr

__all__ = ["Whirr", "open_project", "open_whirr", "server_from_env"]


def __getattr__(name: str) -> Any:
    # The Protocol (and the study types it names) only matter to type checkers and to
    # code that asks for it: a command's start-up does not pay for building it.
    if name == "Whirr":
        from whirr.facade.protocol import Whirr

        return Whirr
    raise AttributeError(f"module 'whirr.facade' has no attribute {name!r}")


def server_from_env(server: str | None = None) -> str | None:
    """The server to talk to: ``server`` if given, else ``WHIRR_SERVER_URL`` (None: the
    local project)."""
    return server or os.environ.get("WHIRR_SERVER_URL") or None


@contextmanager
def open_whirr(server: str | None = None, *, cwd: Path | None = None) -> Iterator[Whirr]:
    """The ``Whirr`` of ``server`` (a URL), of ``WHIRR_SERVER_URL``, or of the project
    enclosing ``cwd`` (``ProjectNotFound`` when there is none), closed on exit."""
    url = server_from_env(server)
    whirr: Whirr
    if url:
        from whirr.client import WhirrClient
        from whirr.facade.http import HttpWhirr

        whirr = HttpWhirr(WhirrClient(url))
    else:
        whirr = open_project(cwd)
    try:
        yield whirr
    finally:
        whirr.close()


def open_project(cwd: Path | None = None) -> Whirr:
    """The ``StoreWhirr`` of the project enclosing ``cwd``; the caller closes it."""
    from whirr.facade.local import StoreSettings, StoreWhirr
    from whirr.project import find_project

    project = find_project(cwd)
    config = project.config
    settings = StoreSettings(
        runs_dir=project.runs_dir,
        worker_timeout=config.heartbeat_timeout,
        forget_workers_after=config.forget_workers_after,
        check_commands=True,
        max_attempts=config.max_attempts,
        retry_delay=config.retry_delay,
        snapshots_dir=project.dir / "snapshots",
        snapshot_by_default=config.snapshot,
        cache_dir=project.dir / "cache",
        own_run_files=True,
        requeue_before_writes=True,
    )
    return StoreWhirr(project.open_store(), settings, label=f"project {project.root}")
