"""``/sweeps``: create (record a sweep and queue its jobs), list, show, resume, cancel.

The server expands and records a sweep with the same service as a local project
(``whirr.sweeps.service``): the sweep's events go to the server's log and each job joins
the sweep in the transaction that queues it, so every machine sees the same sweep. Which
run is best on a metric is worked out by the client from the jobs' runs
(``GET /runs/{id}``, ``/runs/{id}/metrics``), as for any other run data.
"""

from __future__ import annotations

from typing import Any

import msgspec
from sanic import HTTPResponse, Request

from whirr.api.http import body, respond
from whirr.api.render import job_out
from whirr.api.routing import Route, backend
from whirr.services.errors import InvalidRequest
from whirr.store import EventStore
from whirr.studies.linking import submit_option_names
from whirr.studies.results import outcome_of
from whirr.sweeps.expand import size
from whirr.sweeps.progress import SweepRecord, progress
from whirr.sweeps.service import Sweeps
from whirr.sweeps.spec import SweepSpec, parse_spec
from whirr.wire import studies as schemas


def sweep_out(store: EventStore, record: SweepRecord) -> schemas.SweepOut:
    """The API shape of a sweep, with its jobs' current statuses."""
    jobs = []
    for member in record.members:
        outcome = outcome_of(store.job(member.job_id))
        jobs.append(
            schemas.SweepJobOut(
                index=member.index,
                job_id=member.job_id,
                config=member.config,
                status=outcome.status if outcome else None,
                run_id=outcome.run_id if outcome else None,
                started=outcome.started if outcome else False,
            )
        )
    counted = progress(record, {j.job_id: j.status for j in jobs if j.status is not None})
    created = record.created
    return schemas.SweepOut(
        name=created.sweep,
        program=created.program,
        method=created.method,
        parameters=created.parameters,
        planned=created.planned,
        workdir=created.workdir,
        created_at=record.created_at,
        state=counted.state,
        progress=schemas.SweepProgressOut(**msgspec.structs.asdict(counted)),
        jobs=jobs,
        seed=created.seed,
        max_runs=created.max_runs,
        metric=created.metric,
        goal=created.goal,
        source=created.source,
        submit_options=created.submit_options,
        tags=created.tags,
    )


def submit_options(*layers: dict[str, Any], max_attempts: int) -> dict[str, Any]:
    """The study's submit options (later layers win), typed and checked; the server's
    ``max_attempts`` unless one is given."""
    try:
        typed = msgspec.convert(
            {k: v for layer in layers for k, v in layer.items()}, schemas.SubmitOptions
        )
    except msgspec.ValidationError as exc:
        raise InvalidRequest(f"invalid submit options: {exc}") from None
    options = {k: v for k, v in msgspec.structs.asdict(typed).items() if v is not None}
    options.setdefault("max_attempts", max_attempts)
    return options


#: The most jobs one request may queue: a typo in a grid (or in `max_runs`) must not
#: keep the server's single writer busy for hours.
MAX_SWEEP_JOBS = 10_000


def _spec(req: schemas.SweepCreateRequest) -> SweepSpec:
    # JSON is YAML: an object spec is read by the same parser as a file.
    text = req.spec if isinstance(req.spec, str) else msgspec.json.encode(req.spec).decode()
    spec = parse_spec(text, source=req.source or "<sweep>", submit_options=submit_option_names())
    planned = size(spec)
    if planned > MAX_SWEEP_JOBS:
        raise InvalidRequest(
            f"this sweep plans {planned} jobs; a server queues at most "
            f"{MAX_SWEEP_JOBS} per sweep (lower max_runs or the grid)"
        )
    return spec


async def create_sweep(request: Request) -> HTTPResponse:
    """Record a sweep and queue its jobs (the workdir is checked by the workers)."""
    req = body(request, schemas.SweepCreateRequest)
    b = backend(request)
    spec = _spec(req)
    name = req.name or spec.name
    if name is None:
        raise InvalidRequest("give the sweep a name (`name` in the body or in the file)")
    options = submit_options(spec.submit, req.options, max_attempts=b.config.max_attempts)

    def create() -> schemas.SweepQueuedResponse:
        record, jobs = Sweeps(b.store).create(
            spec, name, req.workdir, seed=req.seed, source=req.source, options=options, check=False
        )
        return _queued(b.store, record, jobs)

    return respond(await b.write_and_wake(create))


def _queued(store: EventStore, record: SweepRecord, jobs: list[Any]) -> schemas.SweepQueuedResponse:
    ids = [j.id for j in jobs]
    span = f"#{ids[0]}-#{ids[-1]}" if len(ids) > 1 else "".join(f"#{i}" for i in ids)
    return schemas.SweepQueuedResponse(
        sweep=sweep_out(store, record),
        jobs=[job_out(j) for j in jobs],
        message=f"Sweep {record.name}: queued {len(ids)} job(s) {span}".rstrip(),
    )


async def list_sweeps(request: Request) -> HTTPResponse:
    """Every sweep with its progress, oldest first."""
    b = backend(request)

    def listing() -> schemas.SweepsResponse:
        return schemas.SweepsResponse(sweeps=[sweep_out(b.store, r) for r in Sweeps(b.store).all()])

    return respond(await b.read(listing))


async def get_sweep(request: Request, name: str) -> HTTPResponse:
    """One sweep, with its jobs' statuses and runs."""
    b = backend(request)
    return respond(await b.read(lambda: sweep_out(b.store, Sweeps(b.store).get(name))))


async def resume_sweep(request: Request, name: str) -> HTTPResponse:
    """Queue the jobs of an interrupted sweep that were never queued."""
    b = backend(request)

    def resume() -> schemas.SweepQueuedResponse:
        record, jobs = Sweeps(b.store).resume(name)
        return _queued(b.store, record, jobs)

    return respond(await b.write_and_wake(resume))


async def cancel_sweep(request: Request, name: str) -> HTTPResponse:
    """Cancel the sweep's queued jobs now and ask its running ones to stop."""
    b = backend(request)
    ids = await b.write_and_wake(Sweeps(b.store).cancel, name)
    return respond(
        schemas.SweepCancelResponse(
            message=f"Sweep {name}: cancelled {len(ids)} job(s)", cancelled=ids, count=len(ids)
        )
    )


_SWEEP = "/sweeps/<name:str>"
ROUTES = [
    Route(
        "POST",
        "/sweeps",
        create_sweep,
        "Record a sweep and queue its jobs.",
        body=schemas.SweepCreateRequest,
        response=schemas.SweepQueuedResponse,
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
        "POST",
        f"{_SWEEP}/resume",
        resume_sweep,
        "Queue the jobs an interrupted sweep never queued.",
        response=schemas.SweepQueuedResponse,
    ),
    Route(
        "POST",
        f"{_SWEEP}/cancel",
        cancel_sweep,
        "Cancel a sweep's queued and running jobs.",
        response=schemas.SweepCancelResponse,
    ),
]
