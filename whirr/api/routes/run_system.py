"""``/runs/{id}/system``: a run's system samples (``system.jsonl``: CPU, memory, GPUs).

Samples carry no ``_idx``, so the cursor is a line number: ``since`` skips that many
whole lines and the answer's ``next`` is the ``since`` of the following request. A torn
last line (the sampler mid-write) is neither returned nor counted; a garbled line is
counted but not returned, so cursors never drift.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import msgspec
from sanic import HTTPResponse, Request

from whirr.api import files
from whirr.api.http import query_int, respond
from whirr.api.routes.runs import find_run
from whirr.api.routing import Query, Route, backend, int_schema
from whirr.runfiles import UnsafePath
from whirr.wire import schemas

_decode_row = msgspec.json.Decoder(dict[str, Any]).decode


def read_system_rows(
    runs_dir: Path, run_id: str, since: int, limit: int
) -> tuple[list[dict[str, Any]], int]:
    """Samples of the run's ``system.jsonl`` from whole line ``since`` on, at most
    ``limit``: (samples, the line number after the last one read)."""
    rows: list[dict[str, Any]] = []
    line_no = 0
    try:
        fh = files.run_file(runs_dir, run_id, "system.jsonl").open()
    except (FileNotFoundError, UnsafePath):
        return rows, since
    with fh:
        for line in fh:
            if not line.endswith(b"\n"):
                break  # the last line is still being written
            line_no += 1
            if line_no <= since:
                continue
            try:
                rows.append(_decode_row(line))
            except msgspec.DecodeError:
                continue
            if len(rows) >= limit:
                break
    return rows, max(line_no, since)


async def run_system(request: Request, run_id: str) -> HTTPResponse:
    """The run's ``system.jsonl`` samples from line ``since``, at most ``limit``."""
    since = query_int(request, "since", 0, 0, 2**62) or 0
    limit = query_int(request, "limit", 10_000, 1, 100_000) or 10_000
    b = backend(request)
    run = await b.read(find_run, b.store, run_id)
    rows, after = await b.read(read_system_rows, b.config.runs_dir, run.id, since, limit)
    return respond(schemas.SystemResponse(samples=rows, count=len(rows), next=after))


ROUTES = [
    Route(
        "GET",
        "/runs/<run_id:str>/system",
        run_system,
        "A run's system samples (CPU, memory, GPUs).",
        response=schemas.SystemResponse,
        query=(
            Query(
                "since",
                int_schema(0, 2**62, 0),
                "Whole lines of system.jsonl to skip (the previous answer's next).",
            ),
            Query("limit", int_schema(1, 100_000, 10_000)),
        ),
    ),
]
