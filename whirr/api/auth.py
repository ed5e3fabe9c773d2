"""Bearer-token auth: where the server's token comes from and how requests prove it.

The token is a secret shared by the server, its workers and its clients (``WHIRR_TOKEN``).
``whirr server`` takes it from ``--token``/``WHIRR_TOKEN``, or creates one on first start
in ``<data-dir>/token`` (mode 0600) and prints it once. A stored token is used only from
a regular file of the server's own user that no one else can read or write: a symlink,
another user's file or a file with group/other permission bits is refused
(``TokenFileError``), never repaired, since a token others could read may be theirs
already (whether to replace it is the operator's call, as ``ssh`` does for keys).
"""

from __future__ import annotations

import base64
import binascii
import errno
import hmac
import ipaddress
import os
import secrets
import stat
from pathlib import Path

from whirr.filemodes import FILE_MODE, private_dir
from whirr.web.http import Forbidden, Unauthorized

TOKEN_FILE = "token"


class TokenFileError(Exception):
    """The stored token file cannot be trusted; the message says why and what to do."""


def load_or_create_token(data_dir: Path) -> tuple[str, bool]:
    """The token stored in ``data_dir``, creating it (0600) if absent; (token, created).

    Raises ``TokenFileError`` for a token file that is a symlink, not a regular file,
    not owned by this user, or open to group or others (see the module docstring)."""
    path = data_dir / TOKEN_FILE
    token = _read_token(path)
    if token:
        return token, False
    private_dir(data_dir)
    token = secrets.token_urlsafe(32)
    # O_EXCL + 0600 at creation: the secret is never readable by others, not even briefly.
    flags = os.O_WRONLY | os.O_CLOEXEC | os.O_NOFOLLOW
    try:
        fd = os.open(path, flags | os.O_CREAT | os.O_EXCL, FILE_MODE)
    except FileExistsError:  # an empty file (or a racing first start): use what is there
        existing = _read_token(path)
        if existing:
            return existing, False
        fd = _open_checked(path, flags | os.O_TRUNC)
        os.fchmod(fd, FILE_MODE)  # an empty file holds no secret yet: safe to tighten
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        fh.write(token + "\n")
    return token, True


def _read_token(path: Path) -> str:
    """The token in ``path`` ("" when the file is absent or empty), after the checks."""
    try:
        fd = _open_checked(path, os.O_RDONLY | os.O_CLOEXEC | os.O_NOFOLLOW)
    except FileNotFoundError:
        return ""
    with os.fdopen(fd, "rb") as fh:
        info = os.fstat(fh.fileno())
        if info.st_mode & 0o077:
            if info.st_size == 0:
                return ""  # nothing to leak yet: the caller writes a token at 0600
            mode = stat.S_IMODE(info.st_mode)
            raise TokenFileError(
                f"{path} is open to other users (mode {mode:04o}): the token in it may "
                f"have been read. Replace it (rm {path}; the server makes a new one, and "
                f"clients and workers need it) or, if no one else could have read it, "
                f"keep it: chmod 600 {path}. Then start the server again."
            )
        data = fh.read(4096)
    return data.decode("utf-8", errors="replace").strip()


def _open_checked(path: Path, flags: int) -> int:
    """Open ``path`` (never through a symlink, never blocking on a FIFO) and check that
    it is a regular file of this user; raises ``TokenFileError`` otherwise."""
    try:
        fd = os.open(path, flags | os.O_NONBLOCK)
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise TokenFileError(
                f"{path} is a symbolic link: the server reads its token from a regular "
                "file only. Put the token itself there (mode 0600), or pass --token / "
                "WHIRR_TOKEN."
            ) from None
        raise
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise TokenFileError(f"{path} is not a regular file: refusing to use it as a token")
        if info.st_uid != os.geteuid():
            raise TokenFileError(
                f"{path} belongs to uid {info.st_uid}, not to the user running the server "
                f"(uid {os.geteuid()}): another user could have chosen or read this token. "
                f"Remove it (the server makes a new one) or pass --token / WHIRR_TOKEN."
            )
        os.set_blocking(fd, True)
    except BaseException:
        os.close(fd)
        raise
    return fd


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
    given = bearer_of(header)
    # Constant-time comparison: response timing must not reveal how much of a guess matched.
    if not hmac.compare_digest(given.encode(), token.encode()):
        raise Forbidden("invalid token")


def bearer_of(header: str | None) -> str:
    """The token an ``Authorization: Bearer <token>`` header carries; 401 without one."""
    header = basic_as_bearer(header)
    if not header:
        raise Unauthorized(
            "missing bearer token: send 'Authorization: Bearer <token>' "
            "(clients and workers read WHIRR_TOKEN)"
        )
    scheme, _, given = header.partition(" ")
    if scheme.lower() != "bearer" or not given.strip():
        raise Unauthorized("malformed Authorization header: expected 'Bearer <token>'")
    return given.strip()


def basic_as_bearer(header: str | None) -> str | None:
    """``Authorization: Basic base64(user:TOKEN)`` read as ``Bearer TOKEN``; any other
    header as it is. The original whirr's client (0.5.3) sends no token of its own: given
    a server URL such as ``http://whirr:TOKEN@head:8080``, httpx sends the token as the
    Basic-auth password. The user name is ignored; the token is then compared in constant
    time like a bearer token. 401 for a Basic header that does not decode."""
    if not header:
        return header
    scheme, _, value = header.partition(" ")
    if scheme.lower() != "basic":
        return header
    try:
        decoded = base64.b64decode(value.strip(), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        decoded = ""
    _, colon, password = decoded.partition(":")
    if not colon or not password.strip():
        raise Unauthorized(
            "malformed Authorization header: expected 'Basic base64(user:token)' "
            "(the token as the password) or 'Bearer <token>'"
        )
    return f"Bearer {password.strip()}"
