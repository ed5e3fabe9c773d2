"""Where a request says it comes from: its ``Host``, ``Origin`` and ``Sec-Fetch-Site``.

Shared by the API's browser guard (``whirr.api.guards``) and the dashboard's guards
(``whirr.dashboard.security``), so both read these headers the same way.

- Host: a web page can point a DNS name it controls at 127.0.0.1 (DNS rebinding); its
  requests then carry that name in ``Host``. Serving only loopback names, and the name of
  the server's public URL, keeps such pages out.
- Origin / Sec-Fetch-Site: browsers say which site a request comes from. A request that
  says "another site" did not come from a page of this server.
"""

from __future__ import annotations

import ipaddress
from urllib.parse import urlsplit

from sanic import Request

from whirr.web.http import Forbidden

LOOPBACK_NAMES = frozenset({"localhost", "127.0.0.1", "::1"})
_DEFAULT_PORTS = {"http": 80, "https": 443}


def host_name(host_header: str) -> str:
    """``127.0.0.1:8265`` -> ``127.0.0.1``; ``[::1]:8265`` -> ``::1``."""
    return split_host(host_header)[0]


def split_host(host_header: str) -> tuple[str, int | None]:
    """``Host`` (or a URL's netloc) as (lowercased name, port or None when absent or
    unreadable): ``[::1]:8265`` -> (``::1``, 8265); ``example.com`` -> (``example.com``, None)."""
    host = host_header.strip().lower()
    port = ""
    if host.startswith("["):
        name, _, rest = host[1:].partition("]")
        port = rest[1:] if rest.startswith(":") else ""
    elif host.count(":") == 1:
        name, _, port = host.partition(":")
    else:
        name = host  # a bare name, or an unbracketed IPv6 address
    return name.rstrip("."), int(port) if port.isdigit() else None


def is_loopback_name(name: str) -> bool:
    """True for localhost and loopback addresses."""
    if name in LOOPBACK_NAMES or name.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


def normalize_public_url(url: str) -> str:
    """``https://Whirr.Example.com/`` -> ``https://whirr.example.com``: the scheme and
    authority a public URL names. ValueError when it is not an http(s) URL of a host."""
    parts = urlsplit(url.strip())
    if parts.scheme not in _DEFAULT_PORTS or not parts.hostname:
        raise ValueError(f"{url!r} is not an http:// or https:// URL with a host name")
    if parts.path not in ("", "/") or parts.query or parts.fragment or parts.username:
        raise ValueError(f"{url!r} must be scheme://host[:port], nothing after it")
    try:
        parts.port  # noqa: B018  (raises on a port out of range)
    except ValueError:
        raise ValueError(f"{url!r} has an invalid port") from None
    return f"{parts.scheme}://{parts.netloc.lower()}"


def _same_authority(netloc: str, scheme: str, other: str, other_scheme: str) -> bool:
    """True when two ``host[:port]`` name the same place (a missing port is the scheme's)."""
    name, port = split_host(netloc)
    other_name, other_port = split_host(other)
    if port is None:
        port = _DEFAULT_PORTS.get(scheme)
    if other_port is None:
        other_port = _DEFAULT_PORTS.get(other_scheme)
    return bool(name) and name == other_name and port == other_port


def host_allowed(host_header: str, public_url: str | None = None) -> bool:
    """True for a loopback name (any port), or the host and port of ``public_url``."""
    if is_loopback_name(host_name(host_header)):
        return True
    if public_url is None:
        return False
    public = urlsplit(public_url)
    # The Host header carries no scheme: a missing port there is the public URL's default.
    return _same_authority(host_header, public.scheme, public.netloc, public.scheme)


def check_host(request: Request, public_url: str | None = None, message: str = "") -> None:
    """403 when ``Host`` is neither a loopback name nor ``public_url``'s host (DNS rebinding)."""
    if not host_allowed(request.headers.get("host", ""), public_url):
        raise Forbidden(message or "this server answers only to localhost")


def cross_site(request: Request, public_url: str | None = None) -> str | None:
    """Why the request came from a page of another site, or None when it did not.

    ``Sec-Fetch-Site`` other than ``same-origin``/``none`` (typed by the user), an
    ``Origin`` of ``null``, or one whose host differs from ``Host`` and from
    ``public_url``, all say so. Non-browser clients send neither header.
    """
    if request.headers.get("sec-fetch-site", "same-origin") not in ("same-origin", "none"):
        return "cross-site request refused"
    origin = request.headers.get("origin")
    if origin is None:
        return None
    if origin == "null":
        return "cross-origin request refused"
    parts = urlsplit(origin)
    host = request.headers.get("host", "")
    if parts.netloc.lower() == host.strip().lower():
        return None
    if public_url is not None:
        public = urlsplit(public_url)
        if parts.scheme == public.scheme and _same_authority(
            parts.netloc, parts.scheme, public.netloc, public.scheme
        ):
            return None
    return "cross-origin request refused"


def check_same_origin(request: Request, public_url: str | None = None) -> None:
    """403 when the request says it comes from another site."""
    reason = cross_site(request, public_url)
    if reason is not None:
        raise Forbidden(reason)
