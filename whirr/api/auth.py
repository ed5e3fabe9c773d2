"""Bearer-token auth: where the server's token comes from and how requests prove it.

The token is a secret shared by the server, its workers and its clients (``WHIRR_TOKEN``).
``whirr server`` takes it from ``--token``/``WHIRR_TOKEN``, or creates one on first start
in ``<data-dir>/token`` (mode 0600) and prints it once.
"""

from __future__ import annotations

import hmac
import ipaddress
import os
import secrets
from pathlib import Path

from whirr.web.http import Forbidden, Unauthorized

TOKEN_FILE = "token"


def load_or_create_token(data_dir: Path) -> tuple[str, bool]:
    """The token stored in ``data_dir``, creating it (0600) if absent; (token, created)."""
    path = data_dir / TOKEN_FILE
    try:
        token = path.read_text(encoding="utf-8").strip()
    except FileNotFoundError:
        token = ""
    if token:
        return token, False
    data_dir.mkdir(parents=True, exist_ok=True)
    token = secrets.token_urlsafe(32)
    # O_EXCL + 0600 at creation: the secret is never readable by others, not even briefly.
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:  # an empty file (or a racing first start): use what is there
        existing = path.read_text(encoding="utf-8").strip()
        if existing:
            return existing, False
        os.chmod(path, 0o600)
        fd = os.open(path, os.O_WRONLY | os.O_TRUNC)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        fh.write(token + "\n")
    return token, True


def is_loopback(host: str) -> bool:
    """True when binding ``host`` exposes the server to this machine only."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def check_bearer(header: str | None, token: str) -> None:
    """Raise 401 when no bearer token was sent, 403 when it is not ``token``."""
    if not header:
        raise Unauthorized(
            "missing bearer token: send 'Authorization: Bearer <token>' "
            "(clients and workers read WHIRR_TOKEN)"
        )
    scheme, _, given = header.partition(" ")
    if scheme.lower() != "bearer" or not given.strip():
        raise Unauthorized("malformed Authorization header: expected 'Bearer <token>'")
    # Constant-time comparison: response timing must not reveal how much of a guess matched.
    if not hmac.compare_digest(given.strip().encode(), token.encode()):
        raise Forbidden("invalid token")
