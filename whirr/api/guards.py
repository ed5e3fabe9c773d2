"""The API's guard against web pages: requests a browser could send on a page's behalf.

A page on any site may send "simple" cross-origin requests without asking the server
first (no CORS preflight): GET, HEAD, and POST with a ``text/plain``,
``application/x-www-form-urlencoded`` or ``multipart/form-data`` body, or with no
Content-Type at all (a body of an untyped Blob). The page cannot read the answer, but the
request still acts: against ``whirr server --no-auth`` it could queue a job, which a
worker then runs. And a page can reach a loopback server under a DNS name it controls
that resolves to 127.0.0.1 (DNS rebinding), where the browser treats it as same-origin.

So, on every ``/api/v1`` request:

- A body must not be of a CORS-safelisted type, nor untyped (415). JSON routes take
  ``application/json``; any type outside the safelist makes a browser ask first, and
  this server never grants a preflight (it sends no ``Access-Control-Allow-*`` header).
  Applied with or without auth: a browser never sends a bearer token by itself, so with
  auth on this is defence in depth.
- Without a token, or with a public URL: ``Host`` must be a loopback name or the public
  URL's host (403), which defeats DNS rebinding. With a token and no public URL, any
  name is served: a rebinding page does not have the token.
- Without a token: a request whose ``Origin`` or ``Sec-Fetch-Site`` says it comes from
  another site is refused (403); that covers body-less POSTs such as ``/jobs/N/cancel``.
"""

from __future__ import annotations

from sanic import Request

from whirr.web.config import ServerConfig
from whirr.web.http import Forbidden, UnsupportedMediaType
from whirr.web.origin import check_host, cross_site

#: Content types a browser sends cross-origin without a preflight (the Fetch standard's
#: CORS-safelisted values of Content-Type).
SAFELISTED_TYPES = frozenset(
    {"text/plain", "application/x-www-form-urlencoded", "multipart/form-data"}
)


def media_type(content_type: str | None) -> str:
    """``Application/JSON; charset=utf-8`` -> ``application/json``; None -> ``""``."""
    return (content_type or "").split(";", 1)[0].strip().lower()


def has_body(request: Request) -> bool:
    """True when the request carries a body.

    Sanic reads the body of an ordinary route before request middleware runs, so
    ``request.body`` tells. Middleware also runs on the way to an error answer (no such
    route, a body over the size limit) with the body unread: no body counts then, and
    the client gets that error (404, 413) rather than a 415. A streaming route reads its
    body after the middleware: its headers tell.
    """
    if request.body:
        return True
    route = request.route
    if route is None or not getattr(route.handler, "is_stream", False):
        return False
    if "transfer-encoding" in request.headers:
        return True
    length = request.headers.get("content-length", "0").strip()
    return not length.isdigit() or int(length) > 0


def check_content_type(request: Request) -> None:
    """415 for a body of a type a browser may send cross-origin unasked, or of no type."""
    if not has_body(request):
        return
    kind = media_type(request.headers.get("content-type"))
    if not kind or kind in SAFELISTED_TYPES:
        shown = f"Content-Type {kind}" if kind else "no Content-Type"
        raise UnsupportedMediaType(
            f"request bodies with {shown} are refused (a web page could send them): "
            "send JSON as 'Content-Type: application/json'"
        )


def check_browser_request(request: Request, config: ServerConfig) -> None:
    """Refuse what a web page could make a browser send to this API (see the module)."""
    if config.token is None or config.public_url is not None:
        check_host(
            request,
            config.public_url,
            "this server answers only to localhost"
            + (f" and {config.public_url}" if config.public_url else "")
            + f" (Host {request.headers.get('host', '')!r} refused)",
        )
    if config.token is None:
        reason = cross_site(request, config.public_url)
        if reason is not None:
            raise Forbidden(f"{reason}: this server runs without auth, so web pages may not use it")
    check_content_type(request)
