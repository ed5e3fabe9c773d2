"""``/status``, ``/health`` and the OpenAPI document."""

from __future__ import annotations

from sanic import HTTPResponse, Request

from whirr.api.http import respond
from whirr.api.routing import Route, backend
from whirr.clock import utc_now
from whirr.wire import schemas


async def server_status(request: Request) -> HTTPResponse:
    """Job counts per status and how many workers are online."""
    b = backend(request)

    def gather() -> schemas.StatusResponse:
        counts = b.store.job_counts()
        workers = b.store.workers()
        now = utc_now()
        online = sum(1 for w in workers if w.is_online(now, b.config.worker_timeout))
        return schemas.StatusResponse(
            queued=counts.get("queued", 0),
            running=counts.get("running", 0),
            completed=counts.get("completed", 0),
            failed=counts.get("failed", 0),
            cancelled=counts.get("cancelled", 0),
            timed_out=counts.get("timed_out", 0),
            workers_online=online,
            workers_total=len(workers),
            head=b.store.head(),  # committed: the watcher may not have seen a write yet
        )

    return respond(await b.read(gather))


async def health(request: Request) -> HTTPResponse:
    """Liveness probe; needs no token."""
    return respond(schemas.HealthResponse(status="healthy"))


async def openapi(request: Request) -> HTTPResponse:
    """The OpenAPI 3.1 document of this API."""
    return respond(request.app.ctx.openapi)


ROUTES = [
    Route(
        "GET", "/status", server_status, "Job and worker counts.", response=schemas.StatusResponse
    ),
    Route(
        "GET",
        "/health",
        health,
        "Liveness probe (no token needed).",
        response=schemas.HealthResponse,
        public=True,
        statuses=(),
    ),
    Route("GET", "/openapi.json", openapi, "This document.", statuses=(401, 403)),
]
