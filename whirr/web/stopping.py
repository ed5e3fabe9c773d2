"""Ending long requests when the server stops.

sanic's graceful shutdown waits for open requests and connections: an event stream, a
followed log or a long-polling claim would each hold ``whirr server`` past SIGTERM for as
long as it waits. ``create_app`` makes ``app.ctx.stopping`` and sets it before the server
stops; long handlers wait on it beside what they wait for, then answer and close their
connection.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from typing import Any, TypeVar

from sanic import Request, Sanic
from sanic.http import Http

T = TypeVar("T")


def install(app: Sanic) -> None:
    """Give ``app`` its ``stopping`` event, set before the server stops (once per app:
    the API and the dashboard mounted in it share one)."""
    if hasattr(app.ctx, "stopping"):
        return
    app.ctx.stopping = asyncio.Event()

    @app.before_server_stop
    async def end_long_requests(app: Sanic, loop: Any = None) -> None:
        app.ctx.stopping.set()


def stopping_event(request: Request) -> asyncio.Event:
    """The app's stop event (``create_app`` makes it; ``before_server_stop`` sets it)."""
    event: asyncio.Event = request.app.ctx.stopping
    return event


async def unless_stopping(stopping: asyncio.Event, waiter: Awaitable[T]) -> T | None:
    """``waiter``'s result, or None (``waiter`` cancelled) once ``stopping`` is set."""
    task = asyncio.ensure_future(waiter)
    stop = asyncio.ensure_future(stopping.wait())
    try:
        await asyncio.wait((task, stop), return_when=asyncio.FIRST_COMPLETED)
    finally:
        stop.cancel()
        task.cancel()  # a no-op when it is done
    if stopping.is_set() or not task.done() or task.cancelled():
        return None
    return task.result()


def close_after(request: Request) -> None:
    """Close the connection after this response: sanic's shutdown waits for open
    connections, and an idle keep-alive one would hold it for its whole timeout."""
    http = request.stream
    if isinstance(http, Http):
        http.keep_alive = False
