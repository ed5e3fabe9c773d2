"""``/queue``: whether workers may claim new jobs; pause and resume."""

from __future__ import annotations

from sanic import HTTPResponse, Request

from whirr.api.routing import Route, backend
from whirr.web.http import body, respond
from whirr.wire import schemas


async def queue_state(request: Request) -> HTTPResponse:
    """Paused or not, since when and why; how many jobs wait and run."""
    b = backend(request)
    return respond(await b.read(b.whirr.queue))


async def pause_queue(request: Request) -> HTTPResponse:
    """Stop workers from claiming new jobs (running jobs go on)."""
    req = body(request, schemas.QueuePauseRequest)
    b = backend(request)
    return respond(await b.write_and_wake(b.whirr.pause, req.reason))


async def resume_queue(request: Request) -> HTTPResponse:
    """Let workers claim jobs again."""
    b = backend(request)
    return respond(await b.write_and_wake(b.whirr.resume))


ROUTES = [
    Route("GET", "/queue", queue_state, "The queue's state.", response=schemas.QueueOut),
    Route(
        "POST",
        "/queue/pause",
        pause_queue,
        "Stop workers from claiming new jobs.",
        body=schemas.QueuePauseRequest,
        response=schemas.QueueChangeResponse,
    ),
    Route(
        "POST",
        "/queue/resume",
        resume_queue,
        "Let workers claim jobs again.",
        response=schemas.QueueChangeResponse,
    ),
]
