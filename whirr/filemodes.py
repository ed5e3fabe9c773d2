"""Owner-only files: what whirr creates only its owner can read, whatever the umask.

A project's ``.whirr/`` and a server's data dir hold every job's command, config and
environment (``whirr.db`` and its WAL) and every run's output; ``DATA_DIR/token`` is the
server's secret. So whirr creates its directories 0700 and its files 0600, passing the
mode to ``mkdir``/``open`` itself (a umask can only make them stricter, never looser).
SQLite creates ``whirr.db-wal`` and ``whirr.db-shm`` with the mode of ``whirr.db``, so
creating the database 0600 covers them.

Directories and files that already exist are left as they are: ``whirr doctor`` reports
a project whose database other users can read, with the ``chmod`` that fixes it.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from collections.abc import Iterable
from pathlib import Path

#: Directories whirr creates: the owner only.
DIR_MODE = 0o700
#: Files whirr creates: the owner only.
FILE_MODE = 0o600


def private_dir(path: str | os.PathLike[str]) -> Path:
    """``mkdir -p path``: every directory it creates is 0700; existing ones are kept as
    they are. Like ``Path.mkdir(parents=True, exist_ok=True)``, a non-directory in the
    way raises ``FileExistsError``."""
    path = Path(path)
    try:
        os.mkdir(path, DIR_MODE)
    except FileNotFoundError:
        if path.parent == path:
            raise
        private_dir(path.parent)
        _mkdir_exist_ok(path)
    except FileExistsError:
        if not path.is_dir():
            raise
    return path


def _mkdir_exist_ok(path: Path) -> None:
    try:
        os.mkdir(path, DIR_MODE)
    except FileExistsError:  # created meanwhile by another process: fine if a directory
        if not path.is_dir():
            raise


def open_private(path: str | os.PathLike[str], flags: int) -> int:
    """``os.open(path, flags | O_CREAT | O_CLOEXEC)``, a new file being 0600."""
    return os.open(path, flags | os.O_CREAT | getattr(os, "O_CLOEXEC", 0), FILE_MODE)


def write_private(path: str | os.PathLike[str], data: bytes) -> None:
    """Write ``data`` as the whole content of ``path``, created 0600 when new (an
    existing file keeps its mode, as with ``Path.write_bytes``)."""
    fd = open_private(path, os.O_WRONLY | os.O_TRUNC)
    with os.fdopen(fd, "wb") as fh:
        fh.write(data)


def create_private_file(path: str | os.PathLike[str]) -> bool:
    """Create ``path`` empty and 0600 unless it exists; True when this call created it."""
    try:
        fd = open_private(path, os.O_WRONLY | os.O_EXCL)
    except FileExistsError:
        return False
    os.close(fd)
    return True


class ChecksumMismatch(ValueError):
    """What :func:`save_stream` received does not have the sha256 expected."""


def save_stream(target: Path, chunks: Iterable[bytes], sha256: str | None) -> tuple[int, str]:
    """Write ``chunks`` to ``target`` through a new hidden 0600 file beside it (created
    exclusively, so never through a symlink), renamed into place once complete: (size,
    sha256). With ``sha256``, the content must have it (``ChecksumMismatch`` otherwise,
    and ``target`` is left as it was)."""
    fd, tmp_name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".part", dir=target.parent)
    tmp = Path(tmp_name)
    try:
        hasher, size = hashlib.sha256(), 0
        with os.fdopen(fd, "wb") as fh:
            for chunk in chunks:
                hasher.update(chunk)
                fh.write(chunk)
                size += len(chunk)
        digest = hasher.hexdigest()
        if sha256 is not None and digest != sha256:
            raise ChecksumMismatch(f"arrived with sha256 {digest}, not the {sha256} recorded")
        tmp.replace(target)
        return size, digest
    finally:
        tmp.unlink(missing_ok=True)
