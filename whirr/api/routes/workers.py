"""``/workers``: register, unregister, list."""

from __future__ import annotations

from sanic import HTTPResponse, Request

from whirr.api.routing import Query, Route, backend
from whirr.web.http import body, query_bool, respond
from whirr.wire import schemas


async def register_worker(request: Request) -> HTTPResponse:
    """Announce a worker (again after a restart)."""
    req = body(request, schemas.RegisterRequest)
    b = backend(request)
    slots = 1 if req.slots is None else req.slots
    await b.write(
        b.workers.register,
        req.worker_id,
        req.hostname,
        pid=req.pid,
        gpu_ids=req.gpu_ids,
        slots=slots,
    )
    return respond(
        schemas.RegisterResponse(
            message=f"Worker {req.worker_id} registered",
            success=True,
            server_id=request.app.ctx.server_id,
        )
    )


async def unregister_worker(request: Request) -> HTTPResponse:
    """A worker shuts down; 404 for a worker that never registered."""
    req = body(request, schemas.UnregisterRequest)
    b = backend(request)
    await b.read(b.workers.get, req.worker_id)
    await b.write(b.workers.stopped, req.worker_id, "unregistered")
    return respond(schemas.Ack(message=f"Worker {req.worker_id} unregistered", success=True))


async def list_workers(request: Request) -> HTTPResponse:
    """The workers heard from lately (``forgotten=true``: every one ever registered),
    with whether each is online now."""
    forgotten = query_bool(request, "forgotten", False)
    b = backend(request)
    return respond(schemas.WorkersResponse(workers=await b.read(b.whirr.workers, forgotten)))


async def drain_worker(request: Request, worker_id: str) -> HTTPResponse:
    """Ask a worker to finish its running jobs, claim nothing new, and exit."""
    b = backend(request)
    return respond(await b.write_and_wake(b.whirr.drain, worker_id))


ROUTES = [
    Route(
        "POST",
        "/workers/register",
        register_worker,
        "Register a worker.",
        body=schemas.RegisterRequest,
        response=schemas.RegisterResponse,
        scope="worker",
    ),
    Route(
        "POST",
        "/workers/unregister",
        unregister_worker,
        "Unregister a worker.",
        body=schemas.UnregisterRequest,
        response=schemas.Ack,
        scope="worker",
    ),
    Route(
        "GET",
        "/workers",
        list_workers,
        "List workers.",
        response=schemas.WorkersResponse,
        query=(
            Query(
                "forgotten",
                {"type": "boolean", "default": False},
                "also the workers not heard from for the server's --forget-workers-after (7 days "
                "by default), left out otherwise",
            ),
        ),
    ),
    Route(
        "POST",
        "/workers/<worker_id:str>/drain",
        drain_worker,
        "Drain a worker: it finishes its jobs and exits.",
        response=schemas.WorkerOut,
    ),
]
