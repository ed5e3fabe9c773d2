"""Uploading one finished artifact to a server that does not share the worker's disk.

The file is read from disk in chunks and sent as they are read (never whole in memory),
its sha256 computed on the way; the upload resumes from the bytes the server already has
(``GET /runs/{id}/uploads/{path}``: a worker killed or cut off mid-upload sends only the
rest), and ``complete`` has the server check size and sha256 before it stores the file and
records ``run.artifact_saved``. The shipper (``whirr.shipping.shipper``) calls
:func:`upload_artifact_file` for each finished file under a run's ``artifacts/``.

Errors the caller handles: ``ServerUnreachable`` (retry later: the next call resumes),
``StaleAttempt`` (a newer attempt owns the run: give up), ``InvalidRequest`` (too large
for the server, or the path is refused).
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import stat
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any, BinaryIO, NamedTuple

from whirr.client import WhirrClient
from whirr.runfiles import UnsafePath, open_file
from whirr.services.errors import InvalidRequest, OffsetGap
from whirr.wire.artifact_uploads import StoredArtifact

#: Bytes read from the file (and sent) at a time (measured: 4 MiB is no faster).
CHUNK = 1 << 20
#: Fresh starts an upload may need (the server's partial grew past the file, or the file
#: changed under a resumed upload so the sha256 differed) before giving up.
_RESTARTS = 2
#: Offset gaps (the server lost bytes, e.g. restored from a backup) resumed from at most.
_GAPS = 8


class UploadResult(NamedTuple):
    """What an upload did: the artifact as the server stored it and the bytes sent."""

    stored: StoredArtifact
    sent: int


def upload_artifact_file(
    client: WhirrClient, run_id: str, attempt: int, source: Path, path: str
) -> UploadResult:
    """Upload the file ``source`` as artifact ``path`` (relative to the run's
    ``artifacts/``) of ``run_id`` for ``attempt`` (0 for a direct run): resumed from the
    server's partial upload, streamed, sha256-checked, then stored and recorded."""
    sent = 0
    for _ in range(_RESTARTS + 1):
        try:
            stored, count = _upload_once(client, run_id, attempt, source, path)
        except _FileChanged:
            continue  # shrank while sent: what the server has is resumed or discarded
        sent += count
        if stored is not None:
            return UploadResult(stored, sent)
    raise InvalidRequest(f"artifact {path!r} of run {run_id} changed during every upload try")


def _upload_once(
    client: WhirrClient, run_id: str, attempt: int, source: Path, path: str
) -> tuple[StoredArtifact | None, int]:
    """One try: (the stored artifact, or None when the server's partial upload did not
    fit the file and was discarded: try again; the bytes sent)."""
    sent = 0
    with _open_artifact(source, path) as fh:
        size = os.fstat(fh.fileno()).st_size
        have = client.artifact_upload_size(run_id, path, attempt)
        if size > have.max_size:
            raise InvalidRequest(
                f"artifact {path!r} ({size} bytes) is larger than the server takes "
                f"({have.max_size} bytes)"
            )
        if have.size > size:
            _discard(client, run_id, path, attempt)  # not a prefix of this file
            return None, sent
        hasher, offset = hashlib.sha256(), have.size
        for _gap in range(_GAPS):
            _hash_prefix(fh, hasher, offset)
            try:
                if offset < size or offset == 0:
                    body = _chunks(fh, hasher, size - offset)
                    client.upload_artifact(run_id, path, attempt, offset, body, size - offset)
                    sent += size - offset
                break
            except OffsetGap as gap:
                hasher, offset = hashlib.sha256(), gap.size  # the server has less: resend
        else:
            raise InvalidRequest(f"artifact {path!r}: the server keeps losing bytes")
        try:
            stored = client.complete_artifact(run_id, path, attempt, size, hasher.hexdigest())
        except InvalidRequest as exc:
            # Size or sha256 differ (the server says "discarded"): the file changed
            # while a resumed upload went on. Start over.
            if "discarded" not in str(exc):
                raise
            return None, sent
        return stored, sent


def _open_artifact(source: Path, path: str) -> BinaryIO:
    """``source`` open for reading: a regular file, reached without following a symlink
    below its run directory when ``source`` ends in ``artifacts/<path>`` (a job must not
    make its worker upload a file it points a symlink at)."""
    parts = tuple(path.split("/"))
    tail = ("artifacts", *parts)
    try:
        if source.parts[-len(tail) :] == tail and len(source.parts) > len(tail):
            return open_file(Path(*source.parts[: -len(tail)]), tail)
        fd = os.open(source, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK)
    except UnsafePath as exc:
        raise InvalidRequest(f"artifact {path!r} is not a regular file: {exc}") from None
    except OSError as exc:
        if isinstance(exc, FileNotFoundError):
            raise
        raise InvalidRequest(f"artifact {path!r} cannot be read: {exc}") from None
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        os.close(fd)
        raise InvalidRequest(f"artifact {path!r} is not a regular file")
    os.set_blocking(fd, True)
    return os.fdopen(fd, "rb")


def _hash_prefix(fh: BinaryIO, hasher: Any, offset: int) -> None:
    """Feed the file's first ``offset`` bytes (already on the server) to ``hasher`` and
    leave the file at ``offset``."""
    fh.seek(0)
    left = offset
    while left > 0:
        chunk = fh.read(min(CHUNK, left))
        if not chunk:
            break
        hasher.update(chunk)
        left -= len(chunk)


class _FileChanged(Exception):
    """The file ended before the length announced: it shrank while being sent."""


def _chunks(fh: BinaryIO, hasher: Any, length: int) -> Iterator[bytes]:
    """``length`` bytes of ``fh`` from where it is, a chunk at a time, each hashed on a
    thread while the next is sent (hashlib and sockets both release the GIL: the sha256
    costs no wall time). A file that shrank ends the request with an error (the server
    would otherwise wait for the bytes the Content-Length promised)."""
    left = length
    with ThreadPoolExecutor(1, thread_name_prefix="whirr-sha256") as pool:
        hashing: Future[None] | None = None
        while left > 0:
            chunk = fh.read(min(CHUNK, left))
            if not chunk:
                raise _FileChanged
            if hashing is not None:
                hashing.result()
            hashing = _hash_on(pool, hasher, chunk)
            left -= len(chunk)
            yield chunk
        if hashing is not None:
            hashing.result()


def _hash_on(pool: ThreadPoolExecutor, hasher: Any, chunk: bytes) -> Future[None] | None:
    """Hash ``chunk`` on ``pool``, or here once the interpreter is shutting down (a direct
    run's exit hook flushing its files can start no thread)."""
    try:
        return pool.submit(hasher.update, chunk)
    except RuntimeError:
        hasher.update(chunk)
        return None


def _discard(client: WhirrClient, run_id: str, path: str, attempt: int) -> None:
    """Make the server drop a partial upload that is not a prefix of the file (a
    ``complete`` that cannot match discards it)."""
    with contextlib.suppress(InvalidRequest):
        client.complete_artifact(run_id, path, attempt, 0, "0" * 64)
