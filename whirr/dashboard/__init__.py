"""The web dashboard: pages for the queue, runs, one run and comparisons, live over
server-sent events, charts drawn by plotly.js from the installed ``plotly`` package.

It mounts into any sanic app with ``mount``: ``whirr server`` mounts it beside
``/api/v1`` (reading the server's own store), and ``whirr dashboard`` builds a small app
of its own (``app.create_dashboard_app``) over a local project or a remote server.
"""

from __future__ import annotations

import asyncio
import importlib.util
import logging
import threading
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sanic import Sanic

from whirr.dashboard.security import Settings

if TYPE_CHECKING:
    from whirr.dashboard.source import Source

__all__ = ["Settings", "Source", "mount", "mount_in_server"]
log = logging.getLogger("whirr.dashboard")

#: What the dashboard cannot serve without (polars only makes it faster). Checked before
#: any of its modules is imported: ``whirr server`` without them still serves the API.
NEEDS = ("numpy", "plotly")


def __getattr__(name: str) -> Any:
    # ``Source`` (and numpy with it) is imported on first use only, so that importing this
    # package to ask whether the dashboard can be served does not need the dashboard extra.
    if name == "Source":
        from whirr.dashboard.source import Source

        return Source
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def missing_dependencies() -> list[str]:
    """The modules of ``NEEDS`` that are not installed."""
    return [name for name in NEEDS if importlib.util.find_spec(name) is None]


def mount_in_server(app: Sanic, token: str | None, public_url: str | None = None) -> None:
    """Mount the dashboard in ``whirr server``'s app, behind the server's token (a sign-in
    page turns it into a session cookie), answering to the server's ``public_url`` too.
    Without the dashboard's dependencies, say so in one line and serve the API alone."""
    missing = missing_dependencies()
    if missing:
        log.warning(
            "the web dashboard is off (%s not installed): pip install 'whirr[dashboard]'",
            " and ".join(missing),
        )
        return
    mount(app, Settings(token=token, check_host=token is None, public_url=public_url))


def mount(
    app: Sanic, settings: Settings, make_source: Callable[[Sanic], Source] | None = None
) -> None:
    """Serve the dashboard from ``app``. ``make_source`` builds its data source when the
    server starts; by default the store of the app's ``Backend`` (``app.ctx.backend``,
    opened by a listener registered before this call)."""
    from whirr.dashboard.routes import blueprint

    app.ctx.dashboard_settings = settings
    app.blueprint(blueprint())

    @app.before_server_start
    async def open_source(app: Sanic, loop: Any = None) -> None:
        from whirr.dashboard.source import StoreSource

        if make_source is not None:
            source = make_source(app)
        else:
            backend = app.ctx.backend
            source = StoreSource(backend, "server", backend.config.data_dir)
        app.ctx.dashboard_source = source
        # Compress plotly.js and start polars now, off the event loop and side by side:
        # the first page and the first chart then do not wait for them.
        threading.Thread(
            target=_warm_assets, args=(source.cache_dir,), name="whirr-assets", daemon=True
        ).start()
        threading.Thread(target=_warm_parser, name="whirr-parser", daemon=True).start()
        if isinstance(source, StoreSource):  # run files on this machine: cache as runs end
            follow = source.cache_finished_runs()
            app.ctx.dashboard_follower = asyncio.get_running_loop().create_task(follow)

    @app.before_server_stop
    async def stop_following(app: Sanic, loop: Any = None) -> None:
        follower = getattr(app.ctx, "dashboard_follower", None)
        if follower is not None:
            follower.cancel()

    @app.after_server_stop
    async def close_source(app: Sanic, loop: Any = None) -> None:
        app.ctx.dashboard_source.close()


def _warm_assets(keep_in: Path | None) -> None:
    try:
        from whirr.dashboard import assets

        assets.warm(keep_in)
    except Exception as exc:  # a failure here only costs the first page the same work
        # One line, no traceback: it also happens when the process stops while this runs
        # (an import during interpreter shutdown fails).
        log.warning("could not prepare the dashboard's static files: %s", exc)


def _warm_parser() -> None:
    try:
        from whirr.dashboard import fast

        fast.warm()
    except KeyboardInterrupt:
        # polars checks for signals while it parses, so a Ctrl-C that lands during the
        # warm-up surfaces in this thread too: the main thread has it as well and stops
        # the server; a traceback from here would only be noise.
        pass
    except Exception as exc:  # the first chart then pays for it, nothing worse
        log.warning("could not start the metrics parser: %s", exc)
