"""The route table: each route declared once, with its body and response types, so the
app registers it and the OpenAPI document describes it from the same declaration."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from sanic import Request

from whirr.web.backend import Backend

#: Every route lives under this prefix.
API = "/api/v1"

#: A sanic handler: returns a response, or None after streaming one with ``respond``.
Handler = Callable[..., Awaitable[Any]]


@dataclass(frozen=True)
class Query:
    """A query parameter: its name, JSON schema and description."""

    name: str
    schema: dict[str, Any]
    description: str = ""


@dataclass(frozen=True)
class Route:
    """One route: ``path`` in sanic syntax below ``/api/v1`` (``/jobs/<job_id:int>``)."""

    method: str
    path: str
    handler: Handler
    summary: str
    body: type | None = None
    response: type | None = None
    query: tuple[Query, ...] = ()
    content_type: str = "application/json"
    #: Reachable without a token (only ``/health``).
    public: bool = False
    #: Answers with a stream that a ``follow`` query parameter keeps open.
    streams: bool = False
    statuses: tuple[int, ...] = field(default=(400, 401, 403, 404, 409, 422))
    #: The token scope this route needs (``whirr.api.tokens.SCOPES``), or a tuple of
    #: scopes any one of which will do; unset: ``read`` for a GET, ``admin`` for anything
    #: else (the strictest, until a route says less).
    scope: str | tuple[str, ...] | None = None
    #: The handler reads the body itself (sanic ``stream=True``) under a limit of its
    #: own: a route that takes more than the server's request limit, or streams it.
    stream: bool = False
    #: The body is raw bytes of this type (documented as such), not JSON.
    raw_body: str | None = None

    @property
    def name(self) -> str:
        """The handler's name, used as the OpenAPI ``operationId``."""
        return self.handler.__name__

    @property
    def needs(self) -> tuple[str, ...]:
        """The scopes a token may grant to use this route (any one of them will do)."""
        if isinstance(self.scope, tuple):
            return self.scope
        if self.scope is not None:
            return (self.scope,)
        return ("read",) if self.method == "GET" else ("admin",)


def backend(request: Request) -> Backend:
    """The server's backend (store, services, thread pools)."""
    value: Backend = request.app.ctx.backend
    return value


def int_schema(lo: int, hi: int, default: int | None = None) -> dict[str, Any]:
    """JSON schema of a bounded integer query parameter."""
    schema: dict[str, Any] = {"type": "integer", "minimum": lo, "maximum": hi}
    if default is not None:
        schema["default"] = default
    return schema


BOOL: dict[str, Any] = {"type": "boolean"}
STRING: dict[str, Any] = {"type": "string", "maxLength": 200}
