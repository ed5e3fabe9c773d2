"""The server's id: a random name written once into ``<data-dir>/server-id``.

A worker whose ``--data-dir`` holds a ``server-id`` file with the same content shares the
server's filesystem: it writes run files in place and ships nothing. Any other worker
ships them (``whirr.services.shipping``). The id is no secret (``/health`` tells it to
anyone); it only has to differ between two servers' data dirs.
"""

from __future__ import annotations

import errno
import os
import secrets
import stat
from pathlib import Path

from whirr.filemodes import FILE_MODE, private_dir

SERVER_ID_FILE = "server-id"


def read_server_id(data_dir: str | os.PathLike[str]) -> str | None:
    """The id in ``data_dir/server-id``; None when there is none (or it is not a regular
    file: a symlink there could make two data dirs look like one)."""
    path = Path(data_dir) / SERVER_ID_FILE
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError as exc:
        if exc.errno in (errno.ENOENT, errno.ELOOP, errno.ENOTDIR):
            return None
        raise
    with os.fdopen(fd, "rb") as fh:
        if not stat.S_ISREG(os.fstat(fh.fileno()).st_mode):
            return None
        text = fh.read(200).decode("ascii", errors="replace").strip()
    return text or None


def load_or_create_server_id(data_dir: str | os.PathLike[str]) -> str:
    """The server's id, creating ``data_dir/server-id`` (0600) on the first start."""
    existing = read_server_id(data_dir)
    if existing:
        return existing
    private_dir(data_dir)
    new = secrets.token_hex(16)
    path = Path(data_dir) / SERVER_ID_FILE
    tmp = path.with_name(f".{SERVER_ID_FILE}.{secrets.token_hex(4)}.tmp")
    fd = os.open(
        tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, FILE_MODE
    )
    with os.fdopen(fd, "w", encoding="ascii") as fh:
        fh.write(new + "\n")
    try:
        # link, not rename: a server starting at the same moment keeps the first id.
        os.link(tmp, path)
    except FileExistsError:
        pass
    finally:
        os.unlink(tmp)
    return read_server_id(data_dir) or new
