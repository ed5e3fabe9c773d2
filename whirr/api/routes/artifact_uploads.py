"""Artifact uploads: a worker without the server's filesystem sends each finished artifact
streamed, resumable, size- and sha256-checked (issue 16; ``whirr.services.artifact_uploads``).

- ``PUT /runs/{id}/artifacts/{path}?attempt=K&offset=N``: raw bytes (any length, read as
  they arrive: never the whole file in memory) appended to the partial upload;
- ``GET /runs/{id}/uploads/{path}?attempt=K``: how many bytes arrived (resume from there);
- ``POST /runs/{id}/artifacts/{path}/complete?attempt=K`` ``{"size", "sha256"}``: check,
  store (the run directory or the S3 bucket of ``--artifact-store``), record.

``path`` is relative to the run's ``artifacts/``. Because ``.../{path}/complete`` would
otherwise shadow a path that itself ends in ``/complete``, a GET or PUT of such a path is
routed to the download or the upload here too.
"""

from __future__ import annotations

import asyncio
import contextlib
import weakref
from typing import Any
from urllib.parse import unquote

from sanic import HTTPResponse, Request

from whirr.api.artifact_access import uploads
from whirr.api.routes.runs import run_artifact
from whirr.api.routing import Route, backend
from whirr.api.worker_uploads import (
    ATTEMPT,
    SCOPES,
    offset_query,
    required_attempt,
    streamed_upload,
    upload_offset,
)
from whirr.services.artifact_uploads import ArtifactTooLarge, Partial
from whirr.web.http import body, respond
from whirr.wire.artifact_uploads import (
    ArtifactUploadSize,
    CompleteArtifactRequest,
    StoredArtifact,
)

#: Bytes gathered from the socket before one write to the partial file (and one sha256
#: update, beside it); two batches are in memory at most.
BATCH = 1 << 20


def _lock(request: Request, key: tuple[str, str]) -> asyncio.Lock:
    """One upload at a time per artifact of a run (a retry waits for the request it
    replaces): appends must not interleave."""
    locks: weakref.WeakValueDictionary[tuple[str, str], asyncio.Lock] = request.app.ctx.upload_locks
    lock = locks.get(key)
    if lock is None:
        lock = asyncio.Lock()
        locks[key] = lock
    return lock


async def upload_artifact(request: Request, run_id: str, path: str) -> HTTPResponse:
    """Append the body to the partial upload of ``path`` at ``offset``: bytes the server
    has already (a retry) are skipped, a gap is 409 ``offset_gap`` with ``size``."""
    attempt = required_attempt(request)
    offset = upload_offset(request)
    length_header = request.headers.get("content-length", "")
    length = int(length_header) if length_header.isdigit() else None
    path = unquote(path)
    up = uploads(request)
    b = backend(request)
    async with _lock(request, (run_id, path)):
        partial = await b.read(up.open, run_id, attempt, path, offset, length)
        pending: asyncio.Future[Any] | None = None
        try:
            skip = partial.size - offset  # already there: a retry resends them
            total = partial.size
            batch: list[bytes] = []
            batched = 0
            while True:
                chunk = await request.stream.read()  # type: ignore[union-attr]
                if chunk is None:
                    break
                if skip:
                    if len(chunk) <= skip:
                        skip -= len(chunk)
                        continue
                    chunk, skip = chunk[skip:], 0
                total += len(chunk)
                if total > up.max_size:
                    raise ArtifactTooLarge(
                        f"artifact {path!r} is larger than this server takes ({up.max_size} bytes)"
                    )
                batch.append(chunk)
                batched += len(chunk)
                if batched >= BATCH:
                    # Written (one writev) and hashed on two threads at once while the
                    # next batch arrives; one batch in flight at a time.
                    if pending is not None:
                        await pending
                    pending = _store(b, partial, batch)
                    batch, batched = [], 0
            if pending is not None:
                await pending
                pending = None
            if batch:
                await _store(b, partial, batch)
        finally:
            if pending is not None:
                with contextlib.suppress(Exception):
                    await pending
            await b.read(up.finish_write, run_id, attempt, path, partial)
    return respond(ArtifactUploadSize(size=partial.size, max_size=up.max_size))


def _store(b: Any, partial: Partial, batch: list[bytes]) -> asyncio.Future[Any]:
    """Write ``batch`` and hash it, each on a reader thread (both release the GIL)."""
    if not partial.hashed:
        return asyncio.ensure_future(b.read(partial.write, batch))
    return asyncio.gather(b.read(partial.write, batch), b.read(partial.hash, batch))


async def upload_size(request: Request, run_id: str, path: str) -> HTTPResponse:
    """How many bytes of ``path`` the attempt's upload has on the server (where to
    resume), and the largest artifact the server takes."""
    attempt = required_attempt(request)
    up = uploads(request)
    b = backend(request)
    size = await b.read(up.size, run_id, attempt, unquote(path))
    return respond(ArtifactUploadSize(size=size, max_size=up.max_size))


async def complete_artifact(request: Request, run_id: str, path: str) -> HTTPResponse:
    """Check the upload's size and sha256 (422 and discarded when either differs),
    store it and record ``run.artifact_saved``."""
    attempt = required_attempt(request)
    req = body(request, CompleteArtifactRequest)
    up = uploads(request)
    b = backend(request)
    path = unquote(path)
    async with _lock(request, (run_id, path)):
        # Checking and storing read the whole file (and may upload it to S3): the reader
        # pool does it, the writer only appends the event.
        ready = await b.read(up.verify_and_store, run_id, attempt, path, req.size, req.sha256)
        stored = await b.write_and_wake(up.record, run_id, ready)
    return respond(stored)


async def upload_artifact_named_complete(request: Request, run_id: str, path: str) -> Any:
    """``PUT`` of an artifact whose path ends in ``/complete``."""
    return await upload_artifact(request, run_id, f"{path}/complete")


async def run_artifact_named_complete(request: Request, run_id: str, path: str) -> Any:
    """``GET`` of a run file whose path ends in ``/complete``."""
    return await run_artifact(request, run_id, f"{path}/complete")


_RUN = "/runs/<run_id:str>"
_OFFSET = offset_query("the body's first byte in the file")
ROUTES = [
    streamed_upload(
        f"{_RUN}/artifacts/<path:path>",
        upload_artifact,
        "Upload (part of) an artifact, streamed: raw bytes appended at offset.",
        ArtifactUploadSize,
        _OFFSET,
    ),
    streamed_upload(
        f"{_RUN}/artifacts/<path:path>/complete",
        upload_artifact_named_complete,
        "Upload (part of) an artifact whose path ends in /complete.",
        ArtifactUploadSize,
        _OFFSET,
    ),
    Route(
        "GET",
        f"{_RUN}/uploads/<path:path>",
        upload_size,
        "Bytes of an artifact's upload on the server (resume from there).",
        response=ArtifactUploadSize,
        query=(ATTEMPT,),
        scope=SCOPES,
    ),
    Route(
        "POST",
        f"{_RUN}/artifacts/<path:path>/complete",
        complete_artifact,
        "Finish an artifact's upload: check size and sha256, store it, record it.",
        body=CompleteArtifactRequest,
        response=StoredArtifact,
        query=(ATTEMPT,),
        scope=SCOPES,
        statuses=(400, 401, 403, 404, 409, 413, 422, 503),
    ),
    Route(
        "GET",
        f"{_RUN}/artifacts/<path:path>/complete",
        run_artifact_named_complete,
        "Download one file of a run whose path ends in /complete.",
        content_type="application/octet-stream",
    ),
]
