"""Named tokens with scopes, kept in ``<data-dir>/tokens.json`` (0600).

The file holds only SHA-256 hashes of the tokens, with their names, scopes and created
and revoked times: whoever reads it learns no token. ``whirr token create/list/revoke``
edit it on the server's machine; a running server notices a change by the file's mtime
and size (one ``stat`` per request) and re-reads it, so a revoked token stops working
without a restart.

Scopes (``SCOPES``): ``read`` (every GET), ``submit`` (read, plus queueing, cancelling,
retrying, studies and tracked runs), ``worker`` (read, plus registering, claiming and
reporting jobs) and ``admin`` (everything: pausing the queue, draining workers). The
server's single token (``--token``, ``WHIRR_TOKEN``, ``<data-dir>/token``) is admin.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import secrets
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from whirr.filemodes import FILE_MODE, private_dir

TOKENS_FILE = "tokens.json"
READ, SUBMIT, WORKER, ADMIN = "read", "submit", "worker", "admin"
SCOPES = (READ, SUBMIT, WORKER, ADMIN)
#: What each scope grants besides itself.
IMPLIES: dict[str, frozenset[str]] = {
    READ: frozenset(),
    SUBMIT: frozenset({READ}),
    WORKER: frozenset({READ}),
    ADMIN: frozenset(SCOPES),
}
#: Prefix of named tokens, so that they are recognisable in logs and leak scanners.
PREFIX = "whirr_"


class TokenStoreError(Exception):
    """A token operation that cannot be done; the message says why."""


def grants(scopes: frozenset[str] | set[str] | tuple[str, ...], needed: str) -> bool:
    """True when a token with ``scopes`` may use a route that needs ``needed``."""
    return any(s == needed or needed in IMPLIES.get(s, frozenset()) for s in scopes)


def hash_token(token: str) -> str:
    """The hex SHA-256 stored in place of ``token``."""
    return hashlib.sha256(token.encode()).hexdigest()


@dataclass(frozen=True)
class TokenEntry:
    """One named token as stored (never the token itself)."""

    name: str
    hash: str
    scopes: tuple[str, ...]
    created: float
    revoked: float | None = None

    def public(self) -> dict[str, Any]:
        """What ``whirr token list`` shows."""
        return {
            "name": self.name,
            "scopes": list(self.scopes),
            "created": self.created,
            "revoked": self.revoked,
        }


def _path(data_dir: str | os.PathLike[str]) -> Path:
    return Path(data_dir) / TOKENS_FILE


def read_entries(data_dir: str | os.PathLike[str]) -> list[TokenEntry]:
    """The tokens stored in ``data_dir`` (none when the file is absent)."""
    try:
        raw = _path(data_dir).read_bytes()
    except FileNotFoundError:
        return []
    try:
        data = json.loads(raw or b"{}")
        return [
            TokenEntry(
                name=str(t["name"]),
                hash=str(t["hash"]),
                scopes=tuple(str(s) for s in t["scopes"]),
                created=float(t["created"]),
                revoked=None if t.get("revoked") is None else float(t["revoked"]),
            )
            for t in data.get("tokens", [])
        ]
    except (ValueError, KeyError, TypeError) as exc:
        raise TokenStoreError(f"{_path(data_dir)} is not a valid token file: {exc}") from None


def _write_entries(data_dir: str | os.PathLike[str], entries: list[TokenEntry]) -> None:
    """Replace the file atomically (a new 0600 file renamed over the old one)."""
    root = private_dir(data_dir)
    path = _path(root)
    body = {
        "tokens": [
            {
                "name": e.name,
                "hash": e.hash,
                "scopes": list(e.scopes),
                "created": e.created,
                "revoked": e.revoked,
            }
            for e in entries
        ]
    }
    tmp = root / f".{TOKENS_FILE}.{os.getpid()}.{secrets.token_hex(4)}"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, FILE_MODE)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            json.dump(body, fh, indent=2)
            fh.write("\n")
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def create_token(
    data_dir: str | os.PathLike[str], name: str, scopes: tuple[str, ...]
) -> tuple[str, TokenEntry]:
    """Store a new token named ``name``; returns (the token, shown only now, its entry)."""
    if not name or len(name) > 100 or not all(c.isalnum() or c in "-_." for c in name):
        raise TokenStoreError("a token name is 1 to 100 letters, digits, '-', '_' or '.'")
    unknown = sorted(set(scopes) - set(SCOPES))
    if not scopes or unknown:
        raise TokenStoreError(f"scopes are {', '.join(SCOPES)} (got {', '.join(unknown)})")
    entries = read_entries(data_dir)
    if any(e.name == name and e.revoked is None for e in entries):
        raise TokenStoreError(f"a token named {name!r} exists already (revoke it first)")
    token = PREFIX + secrets.token_urlsafe(32)
    ordered = tuple(s for s in SCOPES if s in scopes)
    entry = TokenEntry(name=name, hash=hash_token(token), scopes=ordered, created=time.time())
    _write_entries(data_dir, [e for e in entries if e.name != name] + [entry])
    return token, entry


def revoke_token(data_dir: str | os.PathLike[str], name: str) -> TokenEntry:
    """Mark the live token ``name`` revoked; it stops working at the server's next request."""
    entries = read_entries(data_dir)
    for i, e in enumerate(entries):
        if e.name == name and e.revoked is None:
            revoked = TokenEntry(e.name, e.hash, e.scopes, e.created, time.time())
            entries[i] = revoked
            _write_entries(data_dir, entries)
            return revoked
    raise TokenStoreError(f"no live token named {name!r} (see whirr token list)")


class TokenTable:
    """The server's view of ``tokens.json``, re-read whenever the file changes."""

    def __init__(self, data_dir: str | os.PathLike[str]) -> None:
        self._path = _path(data_dir)
        self._data_dir = data_dir
        self._lock = threading.Lock()
        self._stamp: tuple[int, int, int] | None = None
        self._by_hash: dict[str, TokenEntry] = {}

    def _refresh(self) -> None:
        try:
            info = os.stat(self._path)
            stamp: tuple[int, int, int] | None = (info.st_mtime_ns, info.st_size, info.st_ino)
        except FileNotFoundError:
            stamp = None
        if stamp == self._stamp:
            return
        with self._lock:
            try:
                entries = read_entries(self._data_dir) if stamp is not None else []
            except TokenStoreError:
                entries = []  # an unreadable file grants nothing (fail closed)
            self._by_hash = {e.hash: e for e in entries if e.revoked is None}
            self._stamp = stamp

    def lookup(self, token: str) -> TokenEntry | None:
        """The live entry whose hash is ``token``'s, if any."""
        self._refresh()
        digest = hash_token(token)
        entry = self._by_hash.get(digest)
        # The dict lookup is by a hash of the secret, so its timing reveals nothing useful;
        # compare again in constant time all the same.
        if entry is not None and hmac.compare_digest(entry.hash, digest):
            return entry
        return None
