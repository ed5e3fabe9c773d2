"""``/sweeps``: create (record a sweep and queue its jobs), list, show, report, resume,
cancel.

Every route calls the server's ``StoreStudies`` (``b.whirr.studies``), the same code a
local project's ``whirr sweep`` runs: the sweep's events go to the server's log, each job
joins the sweep in the transaction that queues it, and a report (each run's value, the
best run) is worked out here, beside the runs' files, from every row of them.
"""

from __future__ import annotations

from sanic import HTTPResponse, Request

from whirr.api.routing import Query, Route, backend
from whirr.facade.local_studies import parse_sweep
from whirr.services.errors import InvalidRequest
from whirr.sweeps.expand import size
from whirr.web.http import body, query_str, respond
from whirr.wire import studies as schemas

#: The most jobs one request may queue: a typo in a grid (or in `max_runs`) must not
#: keep the server's single writer busy for hours.
MAX_SWEEP_JOBS = 10_000
GOALS = ("minimize", "maximize")


def _check_size(req: schemas.SweepCreateRequest) -> None:
    planned = size(parse_sweep(req))
    if planned > MAX_SWEEP_JOBS:
        raise InvalidRequest(
            f"this sweep plans {planned} jobs; a server queues at most "
            f"{MAX_SWEEP_JOBS} per sweep (lower max_runs or the grid)"
        )


async def create_sweep(request: Request) -> HTTPResponse:
    """Record a sweep and queue its jobs (the workdir is checked by the workers)."""
    req = body(request, schemas.SweepCreateRequest)
    _check_size(req)
    b = backend(request)
    return respond(await b.write_and_wake(b.whirr.studies.create_sweep, req))


async def list_sweeps(request: Request) -> HTTPResponse:
    """Every sweep with its progress, oldest first."""
    b = backend(request)
    return respond(schemas.SweepsResponse(sweeps=await b.read(b.whirr.studies.sweeps)))


async def get_sweep(request: Request, name: str) -> HTTPResponse:
    """One sweep, with its jobs' statuses and runs."""
    b = backend(request)
    return respond(await b.read(b.whirr.studies.sweep, name))


async def sweep_report(request: Request, name: str) -> HTTPResponse:
    """Each job's value on a metric (its run's summary, else the last value it logged)
    and the best run so far."""
    metric = query_str(request, "metric", 1000)
    goal = query_str(request, "goal")
    if goal is not None and goal not in GOALS:
        raise InvalidRequest("query parameter 'goal' must be minimize or maximize")
    b = backend(request)
    return respond(await b.read(b.whirr.studies.sweep_report, name, metric, goal))


async def resume_sweep(request: Request, name: str) -> HTTPResponse:
    """Release the jobs a paused sweep holds; queue those an interrupted one never did."""
    b = backend(request)
    return respond(await b.write_and_wake(b.whirr.studies.resume_sweep, name))


async def cancel_sweep(request: Request, name: str) -> HTTPResponse:
    """Cancel the sweep's queued jobs now and ask its running ones to stop."""
    b = backend(request)
    return respond(await b.write_and_wake(b.whirr.studies.cancel_sweep, name))


_SWEEP = "/sweeps/<name:str>"
ROUTES = [
    Route(
        "POST",
        "/sweeps",
        create_sweep,
        "Record a sweep and queue its jobs.",
        body=schemas.SweepCreateRequest,
        response=schemas.SweepQueuedResponse,
        scope="submit",
    ),
    Route(
        "GET",
        "/sweeps",
        list_sweeps,
        "List sweeps with their progress.",
        response=schemas.SweepsResponse,
    ),
    Route("GET", _SWEEP, get_sweep, "One sweep with its jobs.", response=schemas.SweepOut),
    Route(
        "GET",
        f"{_SWEEP}/report",
        sweep_report,
        "Each job's value on a metric, and the best run.",
        response=schemas.SweepReportOut,
        query=(
            Query(
                "metric",
                {"type": "string", "maxLength": 1000},
                "the metric (default: the sweep file's)",
            ),
            Query("goal", {"type": "string", "enum": list(GOALS)}, "default: the file's"),
        ),
    ),
    Route(
        "POST",
        f"{_SWEEP}/resume",
        resume_sweep,
        "Queue the jobs an interrupted sweep never queued.",
        response=schemas.SweepQueuedResponse,
        scope="submit",
    ),
    Route(
        "POST",
        f"{_SWEEP}/cancel",
        cancel_sweep,
        "Cancel a sweep's queued and running jobs.",
        response=schemas.SweepCancelResponse,
        scope="submit",
    ),
]
