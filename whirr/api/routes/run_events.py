"""``/runs/{id}/attach``, ``/summary``, ``/artifacts`` (POST): what a tracked script
records about its run when a remote worker runs it.

Locally ``whirr.init()`` appends these events to the project's database itself; under a
remote worker it has no database, so it sends them here and the server appends the same
events (a second ``run.started``, ``run.summary_updated``, ``run.artifact_saved``).

Only runs the log already knows take events (a worker's ``started`` report creates a
job's run): a script cannot invent runs. Ids are exact, never prefixes: a write must not
land on whichever run a prefix happens to match.
"""

from __future__ import annotations

from pathlib import Path

from sanic import HTTPResponse, Request

from whirr.api.routing import Route, backend
from whirr.projections import RunView
from whirr.services import run_files as files
from whirr.services.errors import InvalidState
from whirr.services.render import run_out
from whirr.services.run_removal import missing_run
from whirr.services.runs import Runs
from whirr.store import EventStore
from whirr.web.http import body, respond
from whirr.wire import schemas
from whirr.wire.run_events import RunArtifactRequest, RunAttachRequest, RunSummaryRequest


def known_run(store: EventStore, run_id: str) -> RunView:
    """The run with exactly this id (422 for a malformed id, 404 for an unknown one,
    410 for a deleted one)."""
    files.check_run_id(run_id)
    run = store.run(run_id)
    if run is None:
        raise missing_run(store, run_id)  # 410 for a deleted run, saying so
    return run


def attach(store: EventStore, run_id: str, req: RunAttachRequest) -> RunView:
    """Record the script's start on its run, merged as the local library merges it."""
    run = known_run(store, run_id)
    if run.finished_at is not None:
        # A late attach must not make an ended run look ``running`` again.
        raise InvalidState(f"run {run_id} has already ended ({run.status})")
    runs = Runs(store, hostname=req.hostname or run.hostname)
    return runs.start(
        run_id,
        run.run_dir,
        name=run.name or req.name,
        job_id=run.job_id,
        config=req.config,
        tags=list(dict.fromkeys([*run.tags, *req.tags])),
        pid=req.pid,
        git=req.git,
    )


def update_summary(store: EventStore, run_id: str, req: RunSummaryRequest) -> None:
    """Merge the values into the run's summary."""
    known_run(store, run_id)
    Runs(store, hostname="").update_summary(run_id, req.summary)


def artifact_saved(store: EventStore, runs_dir: Path, run_id: str, req: RunArtifactRequest) -> str:
    """Record an artifact that exists under the run's ``artifacts/``; its checked path."""
    known_run(store, run_id)
    rel = saved_artifact(runs_dir, run_id, req.path)
    Runs(store, hostname="").artifact_saved(run_id, rel, req.size)
    return rel


def saved_artifact(runs_dir: Path, run_id: str, path: str) -> str:
    """``path`` normalised, when it names a regular file or a directory inside the run's
    ``artifacts/`` reached without a symlink (422 for a path that tries to leave it, 404
    when nothing is there)."""
    rel = "/".join(files.artifact_parts(path))
    files.artifact_kind(runs_dir, run_id, rel)
    return rel


async def attach_run(request: Request, run_id: str) -> HTTPResponse:
    """A tracked script attached to its job's run: record its config, tags, host, pid, git."""
    req = body(request, RunAttachRequest)
    b = backend(request)
    run = await b.write_and_wake(attach, b.store, run_id, req)
    return respond(run_out(run))


async def run_summary(request: Request, run_id: str) -> HTTPResponse:
    """Merge values into the run's summary."""
    req = body(request, RunSummaryRequest)
    b = backend(request)
    await b.write_and_wake(update_summary, b.store, run_id, req)
    return respond(schemas.Ack(message=f"Summary of run {run_id} updated", success=True))


async def run_artifact_saved(request: Request, run_id: str) -> HTTPResponse:
    """Record an artifact the script saved (it must be on the server's data dir)."""
    req = body(request, RunArtifactRequest)
    b = backend(request)
    rel = await b.write_and_wake(artifact_saved, b.store, b.config.runs_dir, run_id, req)
    return respond(schemas.Ack(message=f"Artifact {rel} of run {run_id} recorded", success=True))


_RUN = "/runs/<run_id:str>"
ROUTES = [
    Route(
        "POST",
        f"{_RUN}/attach",
        attach_run,
        "A tracked script attached to its job's run (config, tags, host, pid, git).",
        body=RunAttachRequest,
        response=schemas.Run,
        scope="submit",
    ),
    Route(
        "POST",
        f"{_RUN}/summary",
        run_summary,
        "Merge values into a run's summary.",
        body=RunSummaryRequest,
        response=schemas.Ack,
        scope="submit",
    ),
    Route(
        "POST",
        f"{_RUN}/artifacts",
        run_artifact_saved,
        "Record an artifact saved under the run's artifacts/ on the data dir.",
        body=RunArtifactRequest,
        response=schemas.Ack,
        scope="submit",
    ),
]
