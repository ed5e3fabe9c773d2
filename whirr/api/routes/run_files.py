"""``/runs/{id}/raw/{file}``: a run's ``metrics.jsonl`` or ``system.jsonl`` as it is on
disk, from a byte offset: what ``whirr compare``/``export``/``sql`` against a server copy
into the user's cache, fetching only what was added since (``whirr.facade.mirror``)."""

from __future__ import annotations

from sanic import HTTPResponse, Request
from sanic.response import raw

from whirr.api.routing import Query, Route, backend, int_schema
from whirr.web.http import query_int
from whirr.wire.schemas import RUN_FILE_PAGE


async def run_raw(request: Request, run_id: str, file: str) -> HTTPResponse:
    """Whole lines of the file from ``offset`` (at most ``limit`` bytes, more only when
    one line is longer); ``X-Whirr-Size`` is the file's size. The run id is exact."""
    offset = query_int(request, "offset", 0, 0, 2**62) or 0
    limit = query_int(request, "limit", RUN_FILE_PAGE, 1, RUN_FILE_PAGE) or RUN_FILE_PAGE
    b = backend(request)
    chunk = await b.read(b.whirr.read_run_file, run_id, file, offset, limit)
    return raw(
        chunk.data,
        content_type="application/x-ndjson",
        headers={"X-Whirr-Size": str(chunk.size), "X-Whirr-Offset": str(chunk.offset)},
    )


ROUTES = [
    Route(
        "GET",
        "/runs/<run_id:str>/raw/<file:str>",
        run_raw,
        "A run's metrics or system JSONL from a byte offset.",
        content_type="application/x-ndjson",
        query=(
            Query("offset", int_schema(0, 2**62, 0), "byte offset to start from"),
            Query("limit", int_schema(1, RUN_FILE_PAGE, RUN_FILE_PAGE), "most bytes to send"),
        ),
    ),
]
