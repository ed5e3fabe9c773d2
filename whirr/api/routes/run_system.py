"""``/runs/{id}/system``: a run's system samples (``system.jsonl``: CPU, memory, GPUs).

Samples carry no ``_idx``, so the cursor is a line number: ``since`` skips that many
whole lines and the answer's ``next`` is the ``since`` of the following request (see
``whirr.services.run_files.read_system_rows``).
"""

from __future__ import annotations

import msgspec
from sanic import HTTPResponse, Request

from whirr.api.routes.shipping import FILES_HEADER, files_state
from whirr.api.routing import Query, Route, backend, int_schema
from whirr.services.run_files import collect_skipped
from whirr.web.http import query_int, respond
from whirr.wire import schemas


async def run_system(request: Request, run_id: str) -> HTTPResponse:
    """The run's ``system.jsonl`` samples from line ``since``, at most ``limit``."""
    since = query_int(request, "since", 0, 0, 2**62) or 0
    limit = query_int(request, "limit", 10_000, 1, 100_000) or 10_000
    b = backend(request)
    run = await b.read(b.whirr.run, run_id)
    state = await files_state(request, run.id, "system.jsonl")
    samples, skipped = await b.read(collect_skipped, lambda: b.whirr.system(run.id, since, limit))
    return respond(
        msgspec.structs.replace(samples, files=state, warnings=skipped or None),
        headers={FILES_HEADER: state} if state is not None else None,
    )


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
