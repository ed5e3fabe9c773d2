"""What the routes a worker ships a run through share (run files in
``whirr.api.routes.shipping``, artifacts in ``whirr.api.routes.artifact_uploads``): the
required ``attempt`` query parameter, who may call them, and the shape of a streamed
upload route."""

from __future__ import annotations

from sanic import Request

from whirr.api.routing import Handler, Query, Route, int_schema
from whirr.services.errors import InvalidRequest
from whirr.web.http import query_int

_MAX_ATTEMPT = 2**31 - 1
_MAX_OFFSET = 2**62
ATTEMPT = Query(
    "attempt", int_schema(0, _MAX_ATTEMPT), "the job's current attempt (0: a direct run)"
)
#: A worker's or a user's (direct run's) token; never a run token, so a job cannot
#: rewrite its own record on the server.
SCOPES = ("worker", "submit")


def required_attempt(request: Request) -> int:
    """The request's ``attempt`` query parameter; 400 when it is missing or out of range."""
    value = query_int(request, "attempt", None, 0, _MAX_ATTEMPT)
    if value is None:
        raise InvalidRequest("query parameter 'attempt' is required")
    return value


def offset_query(description: str) -> Query:
    """The ``offset`` query parameter of an upload: where its bytes go (default 0)."""
    return Query("offset", int_schema(0, _MAX_OFFSET, 0), description)


def upload_offset(request: Request) -> int:
    """The request's ``offset`` query parameter (0 when absent); 400 when out of range."""
    return query_int(request, "offset", 0, 0, _MAX_OFFSET) or 0


def streamed_upload(
    path: str, handler: Handler, summary: str, response: type, offset: Query
) -> Route:
    """A ``PUT`` whose raw body the handler reads itself, at ``attempt`` and ``offset``."""
    return Route(
        "PUT",
        path,
        handler,
        summary,
        response=response,
        query=(ATTEMPT, offset),
        scope=SCOPES,
        stream=True,
        raw_body="application/octet-stream",
        statuses=(400, 401, 403, 404, 409, 413, 422),
    )
