"""The app ``whirr dashboard`` serves: the dashboard alone (no ``/api/v1``, no lease
reaper), over the ``Whirr`` that ``open_whirr`` gives: a local project's store and run
files, or a remote server's API."""

from __future__ import annotations

import asyncio
import itertools
import logging
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from sanic import HTTPResponse, Request, Sanic
from sanic.exceptions import SanicException

from whirr.dashboard import mount
from whirr.dashboard.remote import RemoteSource
from whirr.dashboard.security import Settings
from whirr.dashboard.source import Source, StoreSource
from whirr.facade import Whirr
from whirr.services.errors import WhirrError
from whirr.services.workers import FORGET_WORKERS_AFTER
from whirr.store.protocol import StoreError
from whirr.web.backend import Backend
from whirr.web.config import ServerConfig
from whirr.web.http import error

log = logging.getLogger("whirr.dashboard")
_names = itertools.count(1)


def _app(settings: Settings) -> Sanic:
    # Sanic keeps a registry of apps by name: a unique name lets one process build several.
    app = Sanic(f"whirr_dashboard_{os.getpid()}_{next(_names)}")
    app.config.FALLBACK_ERROR_FORMAT = "json"
    app.config.NOISY_EXCEPTIONS = False
    app.config.RESPONSE_TIMEOUT = 90
    app.config.KEEP_ALIVE_TIMEOUT = 75

    @app.exception(Exception)
    async def handle(request: Request, exc: Exception) -> HTTPResponse:
        if isinstance(exc, WhirrError):
            return error(exc.status, str(exc))
        if isinstance(exc, SanicException):
            return error(exc.status_code, str(exc) or "error")
        if isinstance(exc, StoreError):
            return error(503, f"the event store is unavailable: {exc}")
        log.exception("unhandled error", exc_info=exc)
        return error(500, "internal server error (see the dashboard's log)")

    return app


def create_app(whirr: Whirr, settings: Settings) -> Sanic:
    """The dashboard of ``whirr``, as ``open_whirr`` chose it. A project's store is read
    in this process, with its run files parsed here (column cache, polars) and changes
    heard from the store itself; any other facade (a server's) through ``RemoteSource``."""
    from whirr.facade.local import StoreWhirr

    if isinstance(whirr, StoreWhirr):
        # The project's layout is a server data dir's: whirr.db and runs/ side by side.
        whirr_dir = whirr.settings.runs_dir.parent
        return create_local_app(
            whirr_dir,
            settings,
            whirr.settings.worker_timeout,
            label=whirr.label,
            forget_workers_after=whirr.settings.forget_workers_after,
        )
    return create_remote_app(lambda: RemoteSource(whirr), settings)


def create_local_app(
    whirr_dir: Path,
    settings: Settings,
    worker_timeout: float = 120.0,
    label: str | None = None,
    forget_workers_after: float = FORGET_WORKERS_AFTER.total_seconds(),
) -> Sanic:
    """The dashboard of the project whose ``.whirr`` directory is ``whirr_dir``: its
    SQLite log and run files, read-only but for cancel and retry and run management
    (rename, tags, note, archive, delete)."""
    config = ServerConfig(
        data_dir=str(whirr_dir),
        worker_timeout=worker_timeout,
        forget_workers_after=forget_workers_after,
        project=True,
    )
    app = _app(settings)

    @app.before_server_start
    async def open_backend(app: Sanic, loop: Any = None) -> None:
        app.ctx.backend = Backend(config, asyncio.get_running_loop())

    @app.after_server_stop
    async def close_backend(app: Sanic, loop: Any = None) -> None:
        app.ctx.backend.close()

    shown = label or f"project {whirr_dir.parent}"
    mount(app, settings, lambda app: StoreSource(app.ctx.backend, "local", shown))
    return app


def create_remote_app(make_source: Callable[[], Source], settings: Settings) -> Sanic:
    """The dashboard of a facade read from afar; ``make_source()`` returns its source
    (built when the server starts, on its event loop)."""
    app = _app(settings)
    mount(app, settings, lambda app: make_source())
    return app


def serve(app: Sanic, host: str, port: int) -> None:
    """Run ``app`` in this process until SIGINT/SIGTERM."""
    app.run(host=host, port=port, single_process=True, access_log=False, motd=False)
