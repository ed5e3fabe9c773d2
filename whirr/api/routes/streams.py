"""Streams: a job's output (``/jobs/{id}/logs``, optionally followed) and the event log as
server-sent events (``/events``).

The event stream waits on the shared ``HeadWatcher`` rather than a thread. A followed log
polls its file, and ends when
the job ends (after its last bytes), or after a quiet spell so that proxies and the
server's response timeout never cut it mid-way; ``WhirrClient`` then reconnects from the
offset it reached. The event stream sends a comment every ``KEEPALIVE`` seconds for the same
reason.

Both end when the server stops: ``before_server_stop`` sets ``app.ctx.stopping``, and each
open stream ends its response and closes its connection, so SIGTERM is not held up by
sanic's graceful shutdown waiting (15 s) for clients that would never leave.
"""

from __future__ import annotations

import asyncio
from typing import TypeVar

import msgspec
from sanic import HTTPResponse, Request

from whirr.api.routes.shipping import FILES_HEADER, files_state
from whirr.api.routing import BOOL, Query, Route, backend, int_schema
from whirr.events import tag_of
from whirr.runfiles import RunFile, UnsafePath, read_from
from whirr.services import run_files as files
from whirr.services.errors import NotFound
from whirr.web.http import checked_id, query_bool, query_int, query_str, respond
from whirr.web.stopping import close_after, stopping_event, unless_stopping
from whirr.wire import schemas

CHUNK = 64 * 1024
#: A followed log that stays silent this long is closed (the client reconnects).
FOLLOW_QUIET_LIMIT = 30.0
#: How often a followed log re-reads its file and its job's status.
FOLLOW_POLL = 0.25
KEEPALIVE = 15.0
BATCH = 500
_event_json = msgspec.json.Encoder()
T = TypeVar("T")


async def job_logs(request: Request, job_id: int) -> None:
    """The job's ``output.log`` from ``offset``; ``follow`` keeps streaming until it ends."""
    follow = query_bool(request, "follow", False)
    offset = query_int(request, "offset", 0, 0, 2**62) or 0
    b = backend(request)
    job = await b.read(b.jobs.get, checked_id(job_id))
    try:
        state = await files_state(request, job.run_id, "output.log")
    except NotFound:
        if not follow or job.finished_at is not None:
            raise
        state = "pending"  # a follower waits for the first bytes to arrive
    log_file = files.run_file(b.config.runs_dir, job.run_id, "output.log")
    tail = query_int(request, "tail", None, 0, 2**62)
    if tail is not None:  # the last ``tail`` bytes: start there (offset is ignored)
        offset = await b.read(_tail_start, log_file, tail)
    loop = asyncio.get_running_loop()
    headers = {"X-Whirr-Offset": str(offset)}
    if state is not None:
        headers[FILES_HEADER] = state
    response = await request.respond(content_type="text/plain; charset=utf-8", headers=headers)
    quiet_since = loop.time()
    ended = job.finished_at is not None
    stopping = stopping_event(request)
    while True:
        chunk = await b.read(read_from, log_file, offset, CHUNK)
        if chunk:
            await response.send(chunk)
            offset += len(chunk)
            quiet_since = loop.time()
            continue
        if not follow or ended or loop.time() - quiet_since > FOLLOW_QUIET_LIMIT:
            break
        if stopping.is_set():  # noticed within FOLLOW_POLL
            close_after(request)
            break
        current = await b.read(b.store.job, job_id)
        # Ended: loop once more to send what the process wrote before it exited.
        ended = current is None or current.finished_at is not None
        if not ended:
            # Plain polling: output is a file, not an event, and a busy log would
            # otherwise wake every follower on every heartbeat.
            await asyncio.sleep(FOLLOW_POLL)
    await response.eof()


def _tail_start(log_file: RunFile, tail: int) -> int:
    try:
        return max(0, log_file.stat().st_size - tail)
    except (FileNotFoundError, UnsafePath):
        return 0


async def event_stream(request: Request) -> None:
    """Events after ``after`` (or ``Last-Event-ID``) as server-sent events; with
    ``follow`` (default) the stream stays open and sends new events as they happen."""
    after = query_int(request, "after", 0, 0, 2**62) or 0
    last_id = request.headers.get("last-event-id", "")
    if last_id.isdigit() and len(last_id) < 19:
        after = max(after, int(last_id))
    follow = query_bool(request, "follow", True)
    raw_types = query_str(request, "types", max_length=2000)
    types = [t for t in raw_types.split(",") if t] if raw_types else None
    stream = query_str(request, "stream")
    last = query_int(request, "last", None, 0, 1_000_000)
    b = backend(request)
    if last is not None and not last_id.isdigit():  # a reconnect goes on where it was
        after = await b.read(b.whirr.start_of_last, last, types, stream)
    response = await request.respond(
        content_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )
    await response.send("retry: 2000\n\n")
    position = after
    stopping = stopping_event(request)
    while not _closing(request):
        # Every event up to this head is visible to the read below (positions become
        # visible in order), so a filtered stream can skip past it without missing any.
        head = b.heads.head
        batch = await b.read(b.store.read, after=position, limit=BATCH, stream=stream, types=types)
        if batch:
            frames = []
            for rec in batch:
                out = schemas.EventOut(
                    position=rec.position,
                    recorded_at=rec.recorded_at,
                    stream=rec.stream,
                    type=tag_of(rec.event),
                    event=msgspec.to_builtins(rec.event),
                )
                frames.append(
                    f"id: {rec.position}\nevent: {out.type}\n"
                    f"data: {_event_json.encode(out).decode()}\n\n"
                )
            await response.send("".join(frames))
            position = batch[-1].position
            if len(batch) == BATCH:
                continue
        if types is not None or stream is not None:
            position = max(position, head)
        if not follow:
            break
        woke = await unless_stopping(stopping, b.heads.wait_beyond(position, KEEPALIVE))
        if woke is None:
            close_after(request)
            break
        if not woke:
            await response.send(": keepalive\n\n")
    await response.eof()


async def log_archive(request: Request) -> HTTPResponse:
    """The archive segments of the server's log, and the folder they are in."""
    b = backend(request)
    return respond(await b.read(b.whirr.log_archive))


def _closing(request: Request) -> bool:
    transport = request.transport
    return transport is None or transport.is_closing()


ROUTES = [
    Route(
        "GET",
        "/jobs/<job_id:int>/logs",
        job_logs,
        "A job's output (follow: until it ends).",
        content_type="text/plain",
        streams=True,
        query=(
            Query("follow", BOOL, "keep streaming until the job ends"),
            Query("offset", int_schema(0, 2**62, 0), "byte offset to start from"),
            Query("tail", int_schema(0, 2**62, None), "start this many bytes before the end"),
        ),
    ),
    Route(
        "GET",
        "/events",
        event_stream,
        "The event log as server-sent events.",
        content_type="text/event-stream",
        streams=True,
        query=(
            Query("after", int_schema(0, 2**62, 0), "position to start after"),
            Query("follow", BOOL, "stay open for new events (default true)"),
            Query(
                "types",
                {"type": "string", "maxLength": 2000},
                "comma-separated event types, e.g. job.finished",
            ),
            Query("stream", {"type": "string", "maxLength": 200}, "only this stream, e.g. job-3"),
            Query(
                "last",
                int_schema(0, 1_000_000),
                "start at the last N (matching) events instead of after `after`",
            ),
        ),
    ),
    Route(
        "GET",
        "/log/archive",
        log_archive,
        "Where retention moved old liveness events (the segment files).",
        response=schemas.LogArchiveResponse,
    ),
]
