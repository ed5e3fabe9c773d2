"""``/runs/{id}/files``: a worker without the server's filesystem ships a run's files here
(``whirr.services.shipping`` says how; docs/http-api.md "Run files").

Worker or submit tokens only (a direct run's shipper holds a submit token); a job's run
token does not reach these routes, so a job cannot rewrite its own record on the server.
"""

from __future__ import annotations

from sanic import HTTPResponse, Request

from whirr.api.routing import Route, backend
from whirr.api.worker_uploads import (
    ATTEMPT,
    SCOPES,
    offset_query,
    required_attempt,
    streamed_upload,
    upload_offset,
)
from whirr.services.errors import NotFound
from whirr.services.shipping import Shipping, check_name
from whirr.web.http import body, respond
from whirr.wire.shipping import (
    MAX_UPLOAD,
    MAX_WHOLE_FILE,
    WHOLE_FILES,
    FinalFilesRequest,
    RunFiles,
    UploadAnswer,
)

#: Room for what an upload carries beside its bytes (headers, chunk framing).
_SLACK = 64 * 1024


def shipping(request: Request) -> Shipping:
    """The server's shipping service."""
    value: Shipping = request.app.ctx.shipping
    return value


async def run_files_state(request: Request, run_id: str) -> HTTPResponse:
    """The run's files on the server: sizes, the current attempt's sizes, states."""
    b = backend(request)
    return respond(await b.read(shipping(request).files, run_id))


async def upload_run_file(request: Request, run_id: str, name: str) -> HTTPResponse:
    """Append to one of the run's streams, or replace one of its whole files."""
    # The body is read first, whatever the answer: an unread body would be drained
    # under the server's smaller limit and the connection dropped.
    request.stream.request_max_size = (  # type: ignore[union-attr]
        (MAX_WHOLE_FILE if name in WHOLE_FILES else MAX_UPLOAD) + _SLACK
    )
    await request.receive_body()
    data = request.body or b""
    check_name(name)
    attempt = required_attempt(request)
    offset = upload_offset(request)
    b = backend(request)
    size = await b.read(shipping(request).upload, run_id, name, attempt, offset, data)
    return respond(UploadAnswer(size=size))


async def final_run_files(request: Request, run_id: str) -> HTTPResponse:
    """The attempt's final local sizes, sent after its last upload."""
    req = body(request, FinalFilesRequest)
    attempt = required_attempt(request)
    b = backend(request)
    return respond(await b.read(shipping(request).final, run_id, attempt, req.files))


ROUTES = [
    Route(
        "GET",
        "/runs/<run_id:str>/files",
        run_files_state,
        "The run's files on the server: mode, sizes and states (shipping).",
        response=RunFiles,
        scope=SCOPES,
    ),
    streamed_upload(
        "/runs/<run_id:str>/files/<name:str>",
        upload_run_file,
        "Ship bytes of a run file: append at an attempt-local offset, or replace whole.",
        UploadAnswer,
        offset_query("attempt-local byte offset"),
    ),
    Route(
        "POST",
        "/runs/<run_id:str>/files/final",
        final_run_files,
        "The attempt's final sizes of its run files (after the last upload).",
        body=FinalFilesRequest,
        response=RunFiles,
        query=(ATTEMPT,),
        scope=SCOPES,
    ),
]


#: The header that says where a run file's bytes stand on this server.
FILES_HEADER = "X-Whirr-Files"


async def files_state(request: Request, run_id: str, name: str) -> str | None:
    """The state of one of a run's files on this server, for ``X-Whirr-Files`` and the
    ``files`` field of JSON answers: ``live``, ``complete``, ``pending``,
    ``missing_tail`` when its worker ships it, else ``shared`` or ``local``. None for a
    run not started yet. 404 with the reason when the run ships its files and nothing of
    this one has arrived: an empty answer would say the run wrote nothing."""
    try:
        described = await backend(request).read(shipping(request).files, run_id)
    except NotFound:
        return None
    state = described.files.get(name)
    if state is None:
        return described.mode
    if described.mode == "shipped" and state.size == 0 and state.state in _NOTHING_YET:
        where = described.worker_run_dir or "its run directory"
        host = f"{described.hostname}:" if described.hostname else ""
        why = "nothing arrived yet" if state.state == "pending" else "its attempt ended first"
        raise NotFound(
            f"run {run_id}'s {name} has not reached the server ({why}; its worker ships "
            f"it from {host}{where})"
        )
    return state.state


_NOTHING_YET = ("pending", "missing_tail")
