"""Request parsing and response writing shared by the routes.

Every failure a client can cause becomes a 4xx with ``{"detail": ...}``: unreadable JSON
is a 400, JSON of the wrong shape or out of range a 422, a missing token 401, a wrong one
403, a body of a type a web page could send (text/plain, forms, untyped) 415. Only a bug
in whirr may answer 500.
"""

from __future__ import annotations

from typing import Any, TypeVar

import msgspec
from sanic import HTTPResponse, Request

from whirr.services.errors import InvalidRequest, WhirrError

T = TypeVar("T")

_encoder = msgspec.json.Encoder()
_MAX_ID = 2**63 - 1


class BadRequest(WhirrError):
    """The body is not readable JSON (or missing)."""

    status = 400


class Unauthorized(WhirrError):
    """No bearer token was given."""

    status = 401


class Forbidden(WhirrError):
    """A bearer token was given but it is not this server's (or the request came from
    somewhere this server does not answer: a foreign Host, another site's page)."""

    status = 403


class UnsupportedMediaType(WhirrError):
    """The body's Content-Type is one this API does not take (``whirr.api.guards``)."""

    status = 415


def respond(value: Any, status: int = 200, headers: dict[str, str] | None = None) -> HTTPResponse:
    """A JSON response encoded by msgspec (Structs and datetimes included)."""
    return HTTPResponse(
        _encoder.encode(value), status=status, headers=headers, content_type="application/json"
    )


def error(status: int, detail: Any, headers: dict[str, str] | None = None) -> HTTPResponse:
    """The ``{"detail": ...}`` error body."""
    return respond({"detail": detail}, status=status, headers=headers)


def body(request: Request, kind: type[T]) -> T:
    """Decode the JSON body as ``kind``: 400 when unreadable, 422 when of the wrong shape."""
    raw = request.body
    if not raw or not raw.strip():
        raw = b"{}"  # an absent body is an empty object: required fields then say what is missing
    try:
        value = msgspec.json.decode(raw, type=kind)
    except msgspec.ValidationError as exc:
        raise InvalidRequest(f"invalid body: {exc}") from None
    except msgspec.DecodeError as exc:
        raise BadRequest(f"body is not valid JSON: {exc}") from None
    if _has_nul(msgspec.to_builtins(value)):
        # NUL cannot be passed to exec() nor stored by PostgreSQL: refuse it at the door.
        raise InvalidRequest("invalid body: strings must not contain NUL characters")
    return value


def _has_nul(value: Any) -> bool:
    if isinstance(value, str):
        return "\x00" in value
    if isinstance(value, dict):
        return any(_has_nul(k) or _has_nul(v) for k, v in value.items())
    if isinstance(value, list):
        return any(_has_nul(v) for v in value)
    return False


def checked_id(value: int, what: str = "job") -> int:
    """A path id that can exist (ids are positive 64-bit): anything else is not found."""
    from whirr.services.errors import NotFound

    if not 0 < value <= _MAX_ID:
        raise NotFound(f"no {what} #{value}")
    return value


def query_int(request: Request, name: str, default: int | None, lo: int, hi: int) -> int | None:
    """An integer query parameter within ``[lo, hi]`` (422 otherwise)."""
    raw = request.args.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise InvalidRequest(f"query parameter {name!r} must be an integer") from None
    if not lo <= value <= hi:
        raise InvalidRequest(f"query parameter {name!r} must be between {lo} and {hi}")
    return value


def query_bool(request: Request, name: str, default: bool) -> bool:
    """A boolean query parameter: true/false, 1/0, yes/no (422 otherwise)."""
    raw = request.args.get(name)
    if raw is None or raw == "":
        return default
    lowered = raw.lower()
    if lowered in ("1", "true", "yes", "on"):
        return True
    if lowered in ("0", "false", "no", "off"):
        return False
    raise InvalidRequest(f"query parameter {name!r} must be true or false")


def query_str(request: Request, name: str, max_length: int = 200) -> str | None:
    """A short string query parameter (422 when too long or holding NUL)."""
    raw = request.args.get(name)
    if raw is None or raw == "":
        return None
    if len(raw) > max_length or "\x00" in raw:
        raise InvalidRequest(f"query parameter {name!r} is too long or malformed")
    return str(raw)
