"""``/ablations``: create a study, set its baseline, add deltas, plan and run it, list,
show and rank studies.

Every route calls the server's ``StoreStudies`` (``b.whirr.studies``), the same code a
local project's ``whirr ablate`` runs: the study lives in the server's event log, each
cell's config file (``{{cfg_path}}``) is written under its data dir (which the workers
share), and the ranking is worked out here, beside the runs' files.
"""

from __future__ import annotations

from sanic import HTTPResponse, Request

from whirr.api.routes.sweeps import MAX_SWEEP_JOBS
from whirr.api.routing import Route, backend
from whirr.services.errors import InvalidRequest
from whirr.web.http import body, respond
from whirr.wire import studies as schemas


async def create_ablation(request: Request) -> HTTPResponse:
    """Start a study."""
    req = body(request, schemas.AblationCreateRequest)
    b = backend(request)
    return respond(await b.write(b.whirr.studies.create_ablation, req))


async def list_ablations(request: Request) -> HTTPResponse:
    """Every study, oldest first."""
    b = backend(request)
    return respond(schemas.AblationsResponse(ablations=await b.read(b.whirr.studies.ablations)))


async def get_ablation(request: Request, name: str) -> HTTPResponse:
    """One study with its jobs' statuses and runs."""
    b = backend(request)
    return respond(await b.read(b.whirr.studies.ablation, name))


async def ablation_ranking(request: Request, name: str) -> HTTPResponse:
    """The deltas ranked by paired effect on the study's metric, strongest first."""
    b = backend(request)
    return respond(await b.read(b.whirr.studies.ablation_ranking, name))


async def set_baseline(request: Request, name: str) -> HTTPResponse:
    """Merge values into the study's baseline."""
    req = body(request, schemas.AblationValuesRequest)
    b = backend(request)
    return respond(await b.write(b.whirr.studies.set_ablation_baseline, name, req))


async def add_delta(request: Request, name: str) -> HTTPResponse:
    """Add a delta (or replace the one of the same name)."""
    req = body(request, schemas.AblationValuesRequest)
    b = backend(request)
    return respond(await b.write(b.whirr.studies.add_ablation_delta, name, req))


async def plan_ablation(request: Request, name: str) -> HTTPResponse:
    """The cells ``run`` would queue now (nothing is queued)."""
    req = body(request, schemas.AblationPlanRequest)
    b = backend(request)
    cells = await b.read(b.whirr.studies.plan_ablation, name, req)
    return respond(schemas.AblationPlanResponse(cells=cells))


async def run_ablation(request: Request, name: str) -> HTTPResponse:
    """Queue every cell not yet queued (or whose job failed), with paired seeds."""
    req = body(request, schemas.AblationRunRequest)
    b = backend(request)
    studies = b.whirr.studies

    def run() -> schemas.AblationRunResponse:
        plan = schemas.AblationPlanRequest(command=req.command, replicates=req.replicates)
        planned = len(studies.plan_ablation(name, plan))
        if planned > MAX_SWEEP_JOBS:
            raise InvalidRequest(
                f"this run would queue {planned} jobs; a server queues "
                f"at most {MAX_SWEEP_JOBS} at once (run fewer replicates)"
            )
        return studies.run_ablation(name, req)

    return respond(await b.write_and_wake(run))


_STUDY = "/ablations/<name:str>"
ROUTES = [
    Route(
        "POST",
        "/ablations",
        create_ablation,
        "Start an ablation study.",
        body=schemas.AblationCreateRequest,
        response=schemas.AblationOut,
        scope="submit",
    ),
    Route(
        "GET",
        "/ablations",
        list_ablations,
        "List ablation studies.",
        response=schemas.AblationsResponse,
    ),
    Route(
        "GET",
        _STUDY,
        get_ablation,
        "One ablation study with its jobs.",
        response=schemas.AblationOut,
    ),
    Route(
        "GET",
        f"{_STUDY}/ranking",
        ablation_ranking,
        "A study's deltas ranked by paired effect.",
        response=schemas.AblationRankingOut,
    ),
    Route(
        "POST",
        f"{_STUDY}/baseline",
        set_baseline,
        "Set baseline values of a study.",
        body=schemas.AblationValuesRequest,
        response=schemas.AblationOut,
        scope="submit",
    ),
    Route(
        "POST",
        f"{_STUDY}/deltas",
        add_delta,
        "Add (or replace) a delta of a study.",
        body=schemas.AblationValuesRequest,
        response=schemas.AblationDeltaResponse,
        scope="submit",
    ),
    Route(
        "POST",
        f"{_STUDY}/plan",
        plan_ablation,
        "The jobs `run` would queue now.",
        body=schemas.AblationPlanRequest,
        response=schemas.AblationPlanResponse,
        scope="submit",
    ),
    Route(
        "POST",
        f"{_STUDY}/run",
        run_ablation,
        "Queue every missing cell of a study, with paired seeds.",
        body=schemas.AblationRunRequest,
        response=schemas.AblationRunResponse,
        scope="submit",
    ),
]
