"""``/status``, ``/health`` and the OpenAPI document."""

from __future__ import annotations

from sanic import HTTPResponse, Request

import whirr
from whirr.api.routing import Route, backend
from whirr.web.http import respond
from whirr.wire import schemas
from whirr.wire.protocol import CURRENT


async def server_status(request: Request) -> HTTPResponse:
    """Job counts per status and how many workers are online."""
    b = backend(request)
    return respond(await b.read(b.whirr.status))


async def health(request: Request) -> HTTPResponse:
    """Liveness probe; needs no token."""
    return respond(
        schemas.HealthResponse(
            status="healthy",
            version=whirr.__version__,
            protocol=CURRENT,
            server_id=request.app.ctx.server_id,
        )
    )


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
