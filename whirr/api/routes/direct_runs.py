"""``POST /runs`` and ``POST /runs/{id}/finish``: a direct run recorded on a server.

``python train.py`` with ``WHIRR_SERVER_URL`` set (or ``whirr.init(server=...)``) records
its run here rather than in the project around it: one precedence everywhere, as for
every command. No worker runs such a script, so the script itself records its start and
its end (a job's run is started and ended by its worker: ``run_events`` only lets a script
attach to it).

Only ``local-...`` ids may be created (a script cannot take a job's run), a new run never
replaces one the log knows, and only a direct run may be resumed or ended this way. The
run's files are written on the script's machine and shipped here by its background
shipper (a start with ``files: "shipped"`` says so from the first moment).
"""

from __future__ import annotations

from pathlib import Path

from sanic import HTTPResponse, Request

from whirr.api.routes.run_events import known_run
from whirr.api.routing import Route, backend
from whirr.projections import RunView
from whirr.services import run_files as files
from whirr.services.errors import InvalidState, NotFound
from whirr.services.render import run_out
from whirr.services.run_removal import missing_run, was_deleted
from whirr.services.runs import Runs
from whirr.store import EventStore
from whirr.web.http import body, respond
from whirr.wire import schemas
from whirr.wire.run_events import RunFinishRequest, RunStartRequest


def start_direct(store: EventStore, req: RunStartRequest, runs_dir: Path) -> RunView:
    """Record a direct run's start (or, with ``resume``, its start again). A run that
    says it ships its files is ``shipped`` from its start: readers look at the server's
    copy under ``runs_dir``, and the script's own directory is shown as where it writes."""
    files.check_run_id(req.run_id)
    known = store.run(req.run_id)
    if req.resume:
        if known is None:
            if was_deleted(store, req.run_id):
                raise missing_run(store, req.run_id)  # 410: its id stays deleted
            raise NotFound(f"no run {req.run_id!r} to resume")
        if known.job_id is not None:
            raise InvalidState(f"run {req.run_id} is a job's run: it cannot be resumed")
    elif known is not None:
        raise InvalidState(f"run {req.run_id} exists already")
    shipped = req.files == "shipped"
    return Runs(store, hostname=req.hostname).start(
        req.run_id,
        str(files.run_dir(runs_dir, req.run_id)) if shipped else req.run_dir,
        name=req.name,
        config=req.config,
        tags=req.tags,
        pid=req.pid,
        git=req.git,
        files_mode="shipped" if shipped else None,
        worker_run_dir=(req.run_dir or None) if shipped else None,
    )


def finish_direct(store: EventStore, run_id: str, req: RunFinishRequest) -> RunView:
    """Record how a direct run ended (a job's run: its worker records that)."""
    run = known_run(store, run_id)
    if run.job_id is not None:
        raise InvalidState(f"run {run_id} is job #{run.job_id}'s: its worker records its end")
    Runs(store, hostname="").finish(run_id, req.status, error=req.error, exit_code=req.exit_code)
    return known_run(store, run_id)


async def start_run(request: Request) -> HTTPResponse:
    """A direct run started on a machine of its own; record it here."""
    req = body(request, RunStartRequest)
    b = backend(request)
    return respond(run_out(await b.write_and_wake(start_direct, b.store, req, b.config.runs_dir)))


async def finish_run(request: Request, run_id: str) -> HTTPResponse:
    """A direct run ended: record how."""
    req = body(request, RunFinishRequest)
    b = backend(request)
    return respond(run_out(await b.write_and_wake(finish_direct, b.store, run_id, req)))


ROUTES = [
    Route(
        "POST",
        "/runs",
        start_run,
        "Record a direct run's start (a script run by hand, not by a worker).",
        body=RunStartRequest,
        response=schemas.Run,
        scope="submit",
    ),
    Route(
        "POST",
        "/runs/<run_id:str>/finish",
        finish_run,
        "Record how a direct run ended.",
        body=RunFinishRequest,
        response=schemas.Run,
        scope="submit",
    ),
]
