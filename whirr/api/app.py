"""The sanic app factory: ``create_app(config)`` wires the route table, auth, errors, the
backend's lifecycle and the lease reaper; ``serve`` runs it."""

from __future__ import annotations

import asyncio
import hmac
import itertools
import logging
import os
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sanic import HTTPResponse, Request, Sanic
from sanic.exceptions import SanicException

from whirr.api import run_tokens
from whirr.api.auth import bearer_of
from whirr.api.guards import check_browser_request
from whirr.api.openapi import document
from whirr.api.routes import ROUTES
from whirr.api.routes.system import health
from whirr.api.routing import API
from whirr.api.tokens import TokenTable, grants
from whirr.clock import utc_now
from whirr.services.errors import WhirrError
from whirr.services.lease_grace import LeaseGrace
from whirr.services.server_id import load_or_create_server_id
from whirr.services.shipping import Shipping
from whirr.store import EventStore
from whirr.store.protocol import InvalidEvent, StoreError
from whirr.web.backend import Backend
from whirr.web.config import ServerConfig
from whirr.web.http import Forbidden, Unauthorized, check_client_protocol, error
from whirr.web.stopping import install as install_stopping
from whirr.wire import protocol

log = logging.getLogger("whirr.server")
_names = itertools.count(1)
#: Long-polls wait up to 60 s; the response timeout must outlast them.
RESPONSE_TIMEOUT = 90
#: Request body bytes sanic buffers per connection before it pauses reading (see below).
REQUEST_BUFFER_SIZE = 1 << 20


def create_app(config: ServerConfig) -> Sanic:
    """A sanic app serving ``/api/v1`` over the store ``config`` names."""
    # Sanic keeps a registry of apps by name: a unique name lets one process build several.
    app = Sanic(f"whirr_{os.getpid()}_{next(_names)}")
    app.config.REQUEST_MAX_SIZE = config.request_max_size
    # How much of a request body sanic buffers before it stops reading the socket. Its
    # 64 KiB default means a pause, a resume and a handler wake-up per 64 KiB of an
    # artifact upload (16,000 per GiB); 1 MiB cuts those 16-fold and still bounds what
    # one connection holds in memory.
    app.config.REQUEST_BUFFER_SIZE = REQUEST_BUFFER_SIZE
    app.config.RESPONSE_TIMEOUT = RESPONSE_TIMEOUT
    app.config.KEEP_ALIVE_TIMEOUT = 75
    app.config.FALLBACK_ERROR_FORMAT = "json"
    app.config.NOISY_EXCEPTIONS = False
    app.ctx.config = config
    # Written once into the data dir: a worker whose data dir holds the same id shares
    # this filesystem and ships no run files (whirr.services.server_id).
    app.ctx.server_id = load_or_create_server_id(config.data_dir)
    app.ctx.openapi = document(ROUTES)
    install_stopping(app)  # open streams and long-polls end when the server stops
    public = {API + r.path for r in ROUTES if r.public}

    for route in ROUTES:
        app.add_route(
            route.handler,  # type: ignore[arg-type]
            API + route.path,
            methods=[route.method],
            name=route.name,
            strict_slashes=False,
            stream=route.stream,
        )
    # The original whirr answered its liveness probe at the root too: load balancers and
    # compose health checks written for it ask there (no token, like /api/v1/health).
    app.add_route(health, "/health", methods=["GET"], name="root_health", strict_slashes=False)

    @app.on_request
    async def refuse_browser_requests(request: Request) -> None:
        # Before auth: a foreign Host or a page's request is refused whatever it carries.
        if request.path.startswith(API):
            check_browser_request(request, config)

    @app.on_request
    async def check_protocol(request: Request) -> None:
        # After the browser checks, before auth: a worker of another protocol is told
        # which side to upgrade whatever its token (see whirr.wire.protocol).
        if request.path.startswith(API):
            check_client_protocol(request.headers.get(protocol.HEADER))

    @app.on_response
    async def say_protocol(request: Request, response: HTTPResponse) -> None:
        if request.path.startswith(API):
            response.headers[protocol.HEADER] = str(protocol.CURRENT)

    by_name = {route.name: route for route in ROUTES}
    tokens = TokenTable(config.data_dir)
    run_key = run_tokens.run_token_key(config.token or "")
    app.ctx.run_key = run_key if config.token is not None else None

    @app.on_request
    async def authenticate(request: Request) -> None:
        # Only /api/v1 takes bearer tokens; the dashboard's pages check their own session.
        if (
            config.token is None
            or not request.path.startswith(API)
            or request.path.rstrip("/") in public
        ):
            return
        given = bearer_of(request.headers.get("authorization"))
        # Constant-time comparison: timing must not reveal how much of a guess matched.
        if hmac.compare_digest(given.encode(), config.token.encode()):
            return  # the server's own token: every scope
        matched = getattr(request, "route", None)
        route = by_name.get(matched.name.rsplit(".", 1)[-1]) if matched is not None else None
        needs = route.needs if route is not None else ("read",)
        if given.startswith(run_tokens.PREFIX):
            owner = run_tokens.parse(run_key, given)
            if owner is None:
                raise Forbidden("invalid token")
            b: Backend = request.app.ctx.backend
            job = await b.read(b.store.job, owner[0])
            run_id = request.match_info.get("run_id")
            run_tokens.check_run_access(
                route.name if route is not None else None,
                run_id if isinstance(run_id, str) else None,
                job,
                owner[1],
            )
            return
        entry = tokens.lookup(given)
        if entry is None:
            raise Forbidden("invalid token")
        if not any(grants(entry.scopes, scope) for scope in needs):
            wanted = " or ".join(repr(scope) for scope in needs)
            raise Forbidden(
                f"token {entry.name!r} lacks the {wanted} scope that "
                f"{request.method} {request.path} needs (it has: {', '.join(entry.scopes)})"
            )

    @app.exception(Exception)
    async def handle(request: Request, exc: Exception) -> HTTPResponse:
        return _error_response(exc)

    @app.before_server_start
    async def open_backend(app: Sanic, loop: Any = None) -> None:
        app.ctx.backend = Backend(config, asyncio.get_running_loop())
        app.ctx.shipping = Shipping(app.ctx.backend.store, Path(config.data_dir), config.runs_dir)

    @app.after_server_start
    async def start_reaper(app: Sanic, loop: Any = None) -> None:
        app.add_task(
            _reap_expired_leases(app.ctx.backend, config.requeue_interval), name="whirr-reaper"
        )

        if config.retention is not None:  # docs/architecture.md, "Retention"
            from whirr.api.retention import keep_the_log_small

            app.add_task(
                keep_the_log_small(app.ctx.backend.store, config.retention, config.retention_every),
                name="whirr-retention",
            )

    @app.before_server_stop
    async def stop_reaper(app: Sanic, loop: Any = None) -> None:
        await app.cancel_task("whirr-reaper", raise_exception=False)
        if config.retention is not None:
            await app.cancel_task("whirr-retention", raise_exception=False)

    @app.after_server_stop
    async def close_backend(app: Sanic, loop: Any = None) -> None:
        app.ctx.backend.close()

    if config.dashboard:
        from whirr.dashboard import mount_in_server

        mount_in_server(app, config.token, config.public_url)
    return app


def _error_response(exc: Exception) -> HTTPResponse:
    """``{"detail": ...}`` with the status the error carries; 500 only for whirr's bugs."""
    if isinstance(exc, WhirrError):
        headers = (
            {"WWW-Authenticate": 'Bearer realm="whirr"'} if isinstance(exc, Unauthorized) else None
        )
        return error(exc.status, str(exc), headers, exc.fields())
    if isinstance(exc, SanicException):
        status = exc.status_code
        return error(status, str(exc) or _PHRASES.get(status, "error"))
    if isinstance(exc, InvalidEvent):  # the request's fault, refused before the log
        return error(InvalidEvent.status, str(exc))
    if isinstance(exc, StoreError):
        log.error("store error: %s", exc)
        return error(503, f"the event store is unavailable: {exc}")
    log.exception("unhandled error", exc_info=exc)
    return error(500, "internal server error (see the server's log)")


_PHRASES = {404: "not found", 405: "method not allowed", 413: "request body too large"}


#: A reaper round that comes this much later than asked (seconds) means the server
#: itself was paused (SIGSTOP, swap, a suspended machine, a blocked event loop): the time
#: it lost is credited to every running lease before anything is reaped.
STALL_AFTER = 1.0


async def _reap_expired_leases(backend: Backend, interval: float) -> None:
    """Requeue (or end) jobs whose worker went silent, every ``interval`` seconds.

    The server's own pauses do not count against workers (``LeaseGrace``): at start each
    running lease is extended by the time since the log's last event (the server was
    down); a round that woke late by more than ``STALL_AFTER``
    (on the monotonic clock, or the wall clock for a suspended machine) moves every
    running lease on by the delay and reaps nothing until the next round, so the
    heartbeats that waited in the server's sockets are taken first."""
    grace = LeaseGrace()
    running = await backend.read(backend.store.jobs, ["running"])
    if running:
        last = await backend.read(_last_event_at, backend.store)
        now = utc_now()
        grace.started(running, now, last or now)
        log.warning(
            "server started with %d running job(s), %.1f s after its last event: their "
            "leases are extended by that",
            len(running),
            (now - (last or now)).total_seconds(),
        )
    mono, wall = time.monotonic(), time.time()
    while True:
        await asyncio.sleep(interval)
        # The wall time first: a pause after this point makes ``now`` early, never late.
        now_wall, now_mono = time.time(), time.monotonic()
        now = datetime.fromtimestamp(now_wall, UTC)
        late = max(now_mono - mono, now_wall - wall) - interval
        mono, wall = now_mono, now_wall
        try:
            if late > STALL_AFTER:
                running = await backend.read(backend.store.jobs, ["running"])
                grace.stalled(running, late)
                log.warning(
                    "the server was paused for %.1f s: %d running lease(s) extended by that",
                    late,
                    len(running),
                )
                continue
            changed = await backend.write_and_wake(backend.jobs.requeue_expired, now, grace)
            if len(grace):
                grace.update(await backend.read(backend.store.jobs, ["running"]))
        except Exception:  # keep reaping: one failed round must not stop the next
            log.exception("requeueing expired leases failed")
            continue
        for job in changed:
            log.warning(
                "job #%d lease expired: now %s (attempt %d)", job.id, job.status, job.attempt
            )


def _last_event_at(store: EventStore) -> datetime | None:
    """When the newest event of the log was recorded (None: the log is empty)."""
    head = store.head()
    newest = store.read(after=max(0, head - 1), limit=1) if head else []
    return newest[-1].recorded_at if newest else None


def serve(config: ServerConfig, host: str, port: int) -> None:
    """Run the server in this process until SIGINT/SIGTERM."""
    app = create_app(config)
    app.run(host=host, port=port, single_process=True, access_log=False, motd=False)
