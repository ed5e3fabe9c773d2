"""``/ablations``: create a study, set its baseline, add deltas, plan and run it, list and
show studies.

The server keeps the study in its event log with the same service as a local project
(``whirr.ablations.service``) and writes each cell's config file (``{{cfg_path}}``) under
its data dir, which the workers share. Ranking is done by the client from the study and
its jobs' runs (``GET /runs/{id}``, ``/runs/{id}/metrics``), as for any other run data.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sanic import HTTPResponse, Request

from whirr.ablations.service import Ablations
from whirr.ablations.state import Ablation
from whirr.api.backend import Backend
from whirr.api.http import body, respond
from whirr.api.render import job_out
from whirr.api.routes.sweeps import MAX_SWEEP_JOBS, submit_options
from whirr.api.routing import Route, backend
from whirr.services.errors import InvalidRequest
from whirr.store import EventStore
from whirr.studies.results import outcome_of
from whirr.wire import studies as schemas


def ablation_out(store: EventStore, study: Ablation) -> schemas.AblationOut:
    """The API shape of a study, with its jobs' current statuses."""
    members = []
    for m in study.members:
        outcome = outcome_of(store.job(m.job_id))
        members.append(
            schemas.AblationMemberOut(
                job_id=m.job_id,
                condition=m.condition,
                replicate=m.replicate,
                seed=m.seed,
                cfg_path=m.cfg_path,
                status=outcome.status if outcome else None,
                run_id=outcome.run_id if outcome else None,
                started=outcome.started if outcome else False,
            )
        )
    return schemas.AblationOut(
        name=study.name,
        metric=study.metric,
        seed_base=study.seed_base,
        replicates=study.replicates,
        created_at=study.created_at,
        baseline=study.baseline,
        baseline_files=study.baseline_files,
        deltas=[schemas.AblationDeltaOut(d.name, d.values, d.files) for d in study.deltas],
        launches=[
            schemas.AblationLaunchOut(
                command=launch.command, replicates=launch.replicates, workdir=launch.workdir
            )
            for launch in study.launches
        ],
        members=members,
    )


def _studies(b: Backend) -> Ablations:
    # Config files go under the data dir: the one place the server and its workers share.
    return Ablations(b.store, Path(b.config.data_dir).resolve() / "ablations")


async def create_ablation(request: Request) -> HTTPResponse:
    """Start a study."""
    req = body(request, schemas.AblationCreateRequest)
    b = backend(request)

    def create() -> schemas.AblationOut:
        study = _studies(b).create(
            req.name, req.metric, replicates=req.replicates, seed_base=req.seed_base
        )
        return ablation_out(b.store, study)

    return respond(await b.write(create))


async def list_ablations(request: Request) -> HTTPResponse:
    """Every study, oldest first."""
    b = backend(request)

    def listing() -> schemas.AblationsResponse:
        return schemas.AblationsResponse(
            ablations=[ablation_out(b.store, s) for s in _studies(b).all()]
        )

    return respond(await b.read(listing))


async def get_ablation(request: Request, name: str) -> HTTPResponse:
    """One study with its jobs' statuses and runs."""
    b = backend(request)
    return respond(await b.read(lambda: ablation_out(b.store, _studies(b).get(name))))


async def set_baseline(request: Request, name: str) -> HTTPResponse:
    """Merge values into the study's baseline."""
    req = body(request, schemas.AblationValuesRequest)
    b = backend(request)

    def set_values() -> schemas.AblationOut:
        return ablation_out(b.store, _studies(b).set_baseline(name, req.values, req.files))

    return respond(await b.write(set_values))


async def add_delta(request: Request, name: str) -> HTTPResponse:
    """Add a delta (or replace the one of the same name)."""
    req = body(request, schemas.AblationValuesRequest)
    b = backend(request)

    def add() -> schemas.AblationDeltaResponse:
        study, replaced = _studies(b).add_delta(name, req.values, delta=req.delta, files=req.files)
        return schemas.AblationDeltaResponse(
            ablation=ablation_out(b.store, study), replaced=replaced
        )

    return respond(await b.write(add))


async def plan_ablation(request: Request, name: str) -> HTTPResponse:
    """The cells ``run`` would queue now (nothing is queued)."""
    req = body(request, schemas.AblationPlanRequest)
    b = backend(request)

    def plan() -> schemas.AblationPlanResponse:
        _, cells = _studies(b).plan(name, req.command, req.replicates)
        return schemas.AblationPlanResponse(
            cells=[
                schemas.AblationCellOut(
                    condition=c.condition,
                    replicate=c.replicate,
                    seed=c.seed,
                    cfg_path=c.cfg_path,
                    argv=c.argv,
                    config=c.config,
                )
                for c in cells
            ]
        )

    return respond(await b.read(plan))


async def run_ablation(request: Request, name: str) -> HTTPResponse:
    """Queue every cell not yet queued (or whose job failed), with paired seeds."""
    req = body(request, schemas.AblationRunRequest)
    b = backend(request)
    options = submit_options(req.options, max_attempts=b.config.max_attempts)

    def run() -> schemas.AblationRunResponse:
        studies = _studies(b)
        _, cells = studies.plan(name, req.command, req.replicates)
        if len(cells) > MAX_SWEEP_JOBS:
            raise InvalidRequest(
                f"this run would queue {len(cells)} jobs; a server queues "
                f"at most {MAX_SWEEP_JOBS} at once (run fewer replicates)"
            )
        jobs: list[Any] = studies.run(
            name,
            req.command,
            req.workdir,
            replicates=req.replicates,
            options=options,
            force=req.force,
            check=False,
        )
        ids = [j.id for j in jobs]
        span = f" #{ids[0]}-#{ids[-1]}" if len(ids) > 1 else "".join(f" #{i}" for i in ids)
        return schemas.AblationRunResponse(
            jobs=[job_out(j) for j in jobs], message=f"Study {name}: queued {len(ids)} job(s){span}"
        )

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
        "POST",
        f"{_STUDY}/baseline",
        set_baseline,
        "Set baseline values of a study.",
        body=schemas.AblationValuesRequest,
        response=schemas.AblationOut,
    ),
    Route(
        "POST",
        f"{_STUDY}/deltas",
        add_delta,
        "Add (or replace) a delta of a study.",
        body=schemas.AblationValuesRequest,
        response=schemas.AblationDeltaResponse,
    ),
    Route(
        "POST",
        f"{_STUDY}/plan",
        plan_ablation,
        "The jobs `run` would queue now.",
        body=schemas.AblationPlanRequest,
        response=schemas.AblationPlanResponse,
    ),
    Route(
        "POST",
        f"{_STUDY}/run",
        run_ablation,
        "Queue every missing cell of a study, with paired seeds.",
        body=schemas.AblationRunRequest,
        response=schemas.AblationRunResponse,
    ),
]
