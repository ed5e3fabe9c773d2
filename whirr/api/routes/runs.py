"""``/runs``: list, show (exact id or unique prefix), metrics, artifacts and their files."""

from __future__ import annotations

from sanic import HTTPResponse, Request

from whirr.api import files
from whirr.api.download import send_file
from whirr.api.http import query_int, query_str, respond
from whirr.api.render import run_out
from whirr.api.routing import Query, Route, backend, int_schema
from whirr.projections import RunView
from whirr.services.errors import InvalidState, NotFound
from whirr.store import EventStore
from whirr.wire import schemas


def find_run(store: EventStore, run_id: str) -> RunView:
    """The run with this id, or the only one it is a prefix of."""
    files.check_run_id(run_id)
    run = store.run(run_id)
    if run is not None:
        return run
    matches = store.runs_by_prefix(run_id, limit=2)
    if not matches:
        raise NotFound(f"no run {run_id!r}")
    if len(matches) > 1:
        raise InvalidState(f"run id prefix {run_id!r} is ambiguous; give more characters")
    return matches[0]


async def list_runs(request: Request) -> HTTPResponse:
    """Runs newest first, optionally by status and tag."""
    status = query_str(request, "status")
    tag = query_str(request, "tag")
    limit = query_int(request, "limit", 100, 1, 10_000)
    b = backend(request)
    runs = await b.read(b.store.runs, status, tag, limit)
    return respond(schemas.RunsResponse(runs=[run_out(r) for r in runs]))


async def get_run(request: Request, run_id: str) -> HTTPResponse:
    """One run."""
    b = backend(request)
    return respond(run_out(await b.read(find_run, b.store, run_id)))


async def run_metrics(request: Request, run_id: str) -> HTTPResponse:
    """The run's ``metrics.jsonl`` rows (``since`` an ``_idx``, at most ``limit``)."""
    since = query_int(request, "since", 0, 0, 2**62)
    limit = query_int(request, "limit", 100_000, 1, 1_000_000)
    b = backend(request)
    run = await b.read(find_run, b.store, run_id)
    rows = await b.read(files.read_metric_rows, b.config.runs_dir, run.id, since, limit)
    return respond(schemas.MetricsResponse(metrics=rows, count=len(rows)))


async def run_artifacts(request: Request, run_id: str) -> HTTPResponse:
    """The files under the run's ``artifacts/``."""
    b = backend(request)
    run = await b.read(find_run, b.store, run_id)
    found = await b.read(files.list_artifacts, b.config.runs_dir, run.id)
    return respond(schemas.ArtifactsResponse(artifacts=found, count=len(found)))


async def run_artifact(request: Request, run_id: str, path: str) -> HTTPResponse:
    """One artifact file, streamed; never a file outside the run's ``artifacts/``."""
    b = backend(request)
    run = await b.read(find_run, b.store, run_id)
    fh = await b.read(files.open_artifact, b.config.runs_dir, run.id, path)
    return await send_file(request, b, fh, path.rsplit("/", 1)[-1])


_RUN = "/runs/<run_id:str>"
ROUTES = [
    Route(
        "GET",
        "/runs",
        list_runs,
        "List runs, newest first.",
        response=schemas.RunsResponse,
        query=(
            Query("status", {"type": "string", "maxLength": 200}),
            Query("tag", {"type": "string", "maxLength": 200}),
            Query("limit", int_schema(1, 10_000, 100)),
        ),
    ),
    Route("GET", _RUN, get_run, "One run (exact id or unique prefix).", response=schemas.Run),
    Route(
        "GET",
        f"{_RUN}/metrics",
        run_metrics,
        "A run's logged metrics.",
        response=schemas.MetricsResponse,
        query=(
            Query("since", int_schema(0, 2**62, 0)),
            Query("limit", int_schema(1, 1_000_000, 100_000)),
        ),
    ),
    Route(
        "GET",
        f"{_RUN}/artifacts",
        run_artifacts,
        "A run's artifact files.",
        response=schemas.ArtifactsResponse,
    ),
    Route(
        "GET",
        f"{_RUN}/artifacts/<path:path>",
        run_artifact,
        "Download one artifact.",
        content_type="application/octet-stream",
    ),
]
