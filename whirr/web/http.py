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
#: Deepest nesting of arrays and objects a request body may have.
MAX_NESTING = 64


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


class UpgradeRequired(WhirrError):
    """The client speaks a wire protocol this server does not (``whirr.wire.protocol``)."""

    status = 426


def check_client_protocol(header: str | None) -> None:
    """426 when the ``X-Whirr-Protocol`` a client sent is one this server cannot answer
    (no header: the original whirr's protocol 1)."""
    from whirr.wire import protocol

    if header is None:
        given = 1
    else:
        try:
            given = int(header.strip())
        except ValueError:
            raise InvalidRequest(
                f"{protocol.HEADER} must be a number, not {header[:40]!r}"
            ) from None
    reason = protocol.mismatch(given)
    if reason is not None:
        raise UpgradeRequired(reason)


def respond(value: Any, status: int = 200, headers: dict[str, str] | None = None) -> HTTPResponse:
    """A JSON response encoded by msgspec (Structs and datetimes included)."""
    return HTTPResponse(
        _encoder.encode(value), status=status, headers=headers, content_type="application/json"
    )


def error(
    status: int,
    detail: Any,
    headers: dict[str, str] | None = None,
    fields: dict[str, object] | None = None,
) -> HTTPResponse:
    """The ``{"detail": ...}`` error body, with the error's own ``fields`` (``reason``,
    ``size``, ...) beside it when it has any."""
    return respond({"detail": detail, **(fields or {})}, status=status, headers=headers)


def body(request: Request, kind: type[T]) -> T:
    """Decode the JSON body as ``kind``: 400 when unreadable, 422 when of the wrong shape."""
    raw = request.body
    if not raw or not raw.strip():
        raw = b"{}"  # an absent body is an empty object: required fields then say what is missing
    openers = raw.count(b"[") + raw.count(b"{")  # C speed: most bodies stop here
    if openers > MAX_NESTING and _nesting(raw) > MAX_NESTING:
        # Deeper values would exhaust the recursion of whoever walks them next (the
        # decoder, the NUL check, the event encoder): refused before any of them runs.
        raise InvalidRequest(f"invalid body: JSON nested deeper than {MAX_NESTING} levels")
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


def _nesting(raw: bytes) -> int:
    """How deep the arrays and objects of a JSON text nest (brackets inside strings
    not counted); a single pass, no recursion."""
    depth = deepest = 0
    in_string = escaped = False
    for byte in raw:
        if in_string:
            if escaped:
                escaped = False
            elif byte == 0x5C:  # backslash
                escaped = True
            elif byte == 0x22:  # quote
                in_string = False
        elif byte == 0x22:
            in_string = True
        elif byte in (0x5B, 0x7B):  # [ {
            depth += 1
            deepest = max(deepest, depth)
        elif byte in (0x5D, 0x7D):  # ] }
            depth -= 1
    return deepest


def _has_nul(value: Any) -> bool:
    """True when a string anywhere in ``value`` (keys included) holds NUL."""
    pending = [value]
    while pending:
        item = pending.pop()
        if isinstance(item, str):
            if "\x00" in item:
                return True
        elif isinstance(item, dict):
            pending.extend(item.keys())
            pending.extend(item.values())
        elif isinstance(item, list):
            pending.extend(item)
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
