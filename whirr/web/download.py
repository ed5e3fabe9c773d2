"""Sending a file that was opened safely (see ``whirr.runfiles``) as a download.

sanic's ``file_stream`` opens a path itself, and a path is exactly what a job can swap
for a symlink between our check and that open; so artifacts are streamed from the file
object that passed the checks, each chunk read on the backend's reader pool.
"""

from __future__ import annotations

import os
from typing import BinaryIO
from urllib.parse import quote

from sanic import HTTPResponse, Request

from whirr.web.backend import Backend

CHUNK = 256 * 1024


async def send_file(request: Request, b: Backend, fh: BinaryIO, filename: str) -> HTTPResponse:
    """Stream ``fh`` (closed afterwards) as ``application/octet-stream``."""
    try:
        size = os.fstat(fh.fileno()).st_size
    except BaseException:
        fh.close()
        raise
    return await send_reader(request, b, fh, size, filename)


async def send_reader(
    request: Request, b: Backend, fh: BinaryIO, size: int, filename: str
) -> HTTPResponse:
    """Stream ``size`` bytes read from ``fh`` (a file, or an S3 object's body; closed
    afterwards) as ``application/octet-stream``."""
    try:
        ascii_name = filename.encode("ascii", "replace").decode().replace('"', "_")
        disposition = f"attachment; filename=\"{ascii_name}\"; filename*=UTF-8''{quote(filename)}"
        response = await request.respond(
            content_type="application/octet-stream",
            headers={"Content-Length": str(size), "Content-Disposition": disposition},
        )
        sent = 0
        while sent < size:
            # Never more than the size announced: a file still growing is cut there.
            chunk = await b.read(fh.read, min(CHUNK, size - sent))
            if not chunk:
                break
            await response.send(chunk)
            sent += len(chunk)
        await response.eof()
        return response
    finally:
        fh.close()
