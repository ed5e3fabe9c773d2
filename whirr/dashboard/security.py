"""The dashboard's guards: who may look (a session cookie derived from the server's token),
where requests may come from (Host and Origin checks), and proof that a state-changing
POST came from a dashboard page (a CSRF token).

- Session: logging in with the server's token sets ``whirr_session`` =
  HMAC(token, "dashboard-session"), HttpOnly and SameSite=Strict. The cookie never holds
  the token itself, and needs no server-side state; changing the token logs everyone out.
- CSRF: every page carries HMAC(secret, session) in a ``<meta>`` tag; POSTs must send it
  back in ``X-CSRF-Token``. A page on another origin cannot read it, and a custom header
  makes its browser ask first (a CORS preflight this server never grants). Requests whose
  ``Origin`` or ``Sec-Fetch-Site`` says they come from elsewhere are refused anyway.
- Host: without a token, only ``localhost``-style Host headers are served, so a hostile
  web page cannot reach the dashboard by pointing a DNS name at 127.0.0.1 (rebinding).
  With a public URL (``whirr server --public-url``), its host is served too, and only it.
  The header checks themselves live in ``whirr.web.origin``, shared with the API.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass, field
from http.cookies import SimpleCookie

from sanic import Request

from whirr.web import origin
from whirr.web.http import Forbidden, Unauthorized

COOKIE = "whirr_session"
CSRF_HEADER = "x-csrf-token"


@dataclass(frozen=True)
class Settings:
    """How one dashboard guards itself."""

    #: The server's token; None serves without login (loopback binds only).
    token: str | None = None
    #: Refuse Host headers other than loopback names (on when there is no token).
    check_host: bool = True
    #: The URL browsers use to reach the server (``whirr server --public-url``): its host
    #: is served beside loopback names (and only those are, token or not), and pages
    #: loaded from it count as same-origin.
    public_url: str | None = None
    #: Keys CSRF tokens; random per process (a restart asks pages to reload).
    secret: bytes = field(default_factory=lambda: secrets.token_bytes(32))

    @property
    def session_value(self) -> str | None:
        """The cookie value a logged-in browser holds (None when auth is off)."""
        if self.token is None:
            return None
        return hmac.new(self.token.encode(), b"dashboard-session", hashlib.sha256).hexdigest()

    def csrf_token(self, request: Request) -> str:
        """The CSRF token for this browser (bound to its session when there is one)."""
        session = request.cookies.get(COOKIE, "") if self.token else "anonymous"
        return hmac.new(self.secret, f"csrf:{session}".encode(), hashlib.sha256).hexdigest()

    def signed_in(self, request: Request) -> bool:
        """True when the request carries a valid session cookie or bearer token."""
        if self.token is None:
            return True
        cookie = request.cookies.get(COOKIE)
        expected = self.session_value or ""
        if cookie and hmac.compare_digest(cookie.encode(), expected.encode()):
            return True
        header = request.headers.get("authorization", "")
        scheme, _, given = header.partition(" ")
        return scheme.lower() == "bearer" and hmac.compare_digest(
            given.strip().encode(), self.token.encode()
        )

    def csrf_matches(self, request: Request, given: str) -> bool:
        """True when ``given`` is this browser's CSRF token (constant time)."""
        expected = self.csrf_token(request)
        return bool(given) and hmac.compare_digest(given.encode(), expected.encode())

    def secure_cookie(self, request: Request) -> bool:
        """Whether the session cookie is ``Secure`` (sent over HTTPS only): when this request
        came over TLS, or when browsers reach the server at an ``https://`` public URL. A
        TLS proxy in front forwards plain HTTP, so ``request.scheme`` alone never says so
        there; ``--public-url https://...`` does. (Browsers keep a Secure cookie set over
        plain HTTP by localhost / 127.0.0.1, so signing in on loopback still works.)"""
        public_https = self.public_url is not None and self.public_url.startswith("https://")
        return public_https or request.scheme == "https"

    def check_token(self, given: str) -> bool:
        """True when ``given`` is the server's token (constant time)."""
        return self.token is not None and hmac.compare_digest(
            given.strip().encode(), self.token.encode()
        )


def check_host(request: Request, public_url: str | None = None) -> None:
    """Refuse a Host header that is not a loopback name nor ``public_url``'s (DNS rebinding)."""
    if public_url is not None:
        where = f"this dashboard answers only to localhost and {public_url}"
    else:
        where = (
            "this dashboard answers only to localhost; open it as "
            "http://127.0.0.1:<port>/ (or run it with a token)"
        )
    origin.check_host(request, public_url, where)


def check_same_origin(request: Request, public_url: str | None = None) -> None:
    """Refuse a request that says it comes from another site."""
    origin.check_same_origin(request, public_url)


def check_csrf(request: Request, settings: Settings) -> None:
    """A state-changing request must come from our page: same origin and CSRF token."""
    check_same_origin(request, settings.public_url)
    if not settings.csrf_matches(request, request.headers.get(CSRF_HEADER, "")):
        raise Forbidden("missing or stale CSRF token: reload the page and try again")


def require_login(request: Request, settings: Settings) -> None:
    """401 when auth is on and the request is not signed in."""
    if not settings.signed_in(request):
        raise Unauthorized("sign in to the dashboard first")


def session_cookie(settings: Settings, secure: bool) -> str:
    """The ``Set-Cookie`` value that signs a browser in."""
    cookie: SimpleCookie = SimpleCookie()
    cookie[COOKIE] = settings.session_value or ""
    morsel = cookie[COOKIE]
    morsel["path"] = "/"
    morsel["httponly"] = True
    morsel["samesite"] = "Strict"
    morsel["max-age"] = str(30 * 24 * 3600)
    if secure:
        morsel["secure"] = True
    return morsel.OutputString()


def cleared_cookie() -> str:
    """The ``Set-Cookie`` value that signs a browser out."""
    return f"{COOKIE}=; Path=/; Max-Age=0; HttpOnly; SameSite=Strict"


def safe_next(target: str | None) -> str:
    """Where to go after login: a path on this site only (never ``//evil`` or a URL)."""
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return "/"
    return target
