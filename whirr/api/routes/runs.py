"""``/runs``: list, show (exact id or unique prefix), metrics, artifacts and their files."""

from __future__ import annotations

from urllib.parse import unquote

from sanic import HTTPResponse, Request

from whirr.api.artifact_access import s3_location, s3_store
from whirr.api.routes.shipping import FILES_HEADER, files_state
from whirr.api.routing import Query, Route, backend, int_schema
from whirr.projections import RunView
from whirr.services import run_files as files
from whirr.services.errors import InvalidRequest, NotFound
from whirr.store.runs_page import RunsPage
from whirr.web.backend import Backend
from whirr.web.download import send_file, send_reader
from whirr.web.http import query_bool, query_int, query_str, respond
from whirr.wire import schemas
from whirr.wire.run_manage import archived_flag

#: Parameters that ask ``GET /runs`` for a page of the store's ``runs_page`` (any one).
PAGE_PARAMS = ("sort", "order", "offset", "q", "counts")


async def list_runs(request: Request) -> HTTPResponse:
    """Runs newest first, optionally by status and tag; or, asked with any of
    ``PAGE_PARAMS``, one page filtered, sorted and counted by the store."""
    status = query_str(request, "status")
    tag = query_str(request, "tag")
    limit = query_int(request, "limit", 100, 1, 10_000) or 100
    archived = query_str(request, "archived") or "exclude"
    if archived not in ("exclude", "only", "include"):
        raise InvalidRequest(f"archived must be exclude, only or include, not {archived!r}")
    b = backend(request)
    if not any(request.args.get(name) not in (None, "") for name in PAGE_PARAMS):
        # The listing as it always was (the original client asks nothing more).
        found = await b.read(b.whirr.runs, status, tag, limit, archived)
        return respond(schemas.RunsResponse(runs=found))
    order = query_str(request, "order") or "desc"
    if order not in ("asc", "desc"):
        raise InvalidRequest(f"order must be asc or desc, not {order!r}")
    page = RunsPage(
        text=query_str(request, "q", 500) or "",
        status=status,
        tag=tag,
        sort=query_str(request, "sort", 500) or "started_at",
        descending=order == "desc",
        offset=query_int(request, "offset", 0, 0, 10**9) or 0,
        limit=limit,
        archived=archived_flag(archived),
    )
    counts = query_bool(request, "counts", False)
    return respond(await b.read(b.whirr.runs_page, page, counts))


async def get_run(request: Request, run_id: str) -> HTTPResponse:
    """One run: exact id, unique prefix, or its job (``1``, ``job-1``)."""
    b = backend(request)
    return respond(await b.read(b.whirr.run, run_id))


async def run_metrics(request: Request, run_id: str) -> HTTPResponse:
    """The run's ``metrics.jsonl`` rows (``since`` an ``_idx``, at most ``limit``)."""
    since = query_int(request, "since", 0, 0, 2**62)
    limit = query_int(request, "limit", 100_000, 1, 1_000_000)
    b = backend(request)
    run = await b.read(b.whirr.run, run_id)
    state = await files_state(request, run.id, "metrics.jsonl")
    rows, skipped = await b.read(
        files.collect_skipped, lambda: b.whirr.metrics(run.id, since or 0, limit or 100_000)
    )
    return respond(
        schemas.MetricsResponse(
            metrics=rows, count=len(rows), files=state, warnings=skipped or None
        ),
        headers={FILES_HEADER: state} if state is not None else None,
    )


async def run_tail(request: Request, run_id: str) -> HTTPResponse:
    """The last ``rows`` whole rows of the run's ``metrics`` or ``system`` file."""
    file = query_str(request, "file") or "metrics"
    rows = query_int(request, "rows", 50, 0, 100_000) or 0
    b = backend(request)
    run = await b.read(b.whirr.run, run_id)
    found, skipped = await b.read(files.collect_skipped, lambda: b.whirr.tail(run.id, file, rows))
    return respond(schemas.TailResponse(rows=found, count=len(found), warnings=skipped or None))


async def run_artifacts(request: Request, run_id: str) -> HTTPResponse:
    """Every file of the run's directory, by path relative to it (``output.log``,
    ``artifacts/model.pt``), as the original whirr listed them."""
    b = backend(request)
    run = await b.read(b.whirr.run, run_id)
    found = await b.read(files.list_run_files, b.config.runs_dir, run.id)
    found = with_stored_artifacts(found, await b.read(b.store.run, run.id))
    return respond(schemas.ArtifactsResponse(artifacts=found, count=len(found)))


async def run_artifact(request: Request, run_id: str, path: str) -> HTTPResponse:
    """One file of the run's directory (or, for a bare name, of its ``artifacts/``),
    streamed; never a file outside the run's directory."""
    b = backend(request)
    run = await b.read(b.whirr.run, run_id)
    path = unquote(path)  # sanic hands the path over still percent-encoded
    name = path.rsplit("/", 1)[-1]
    view = await b.read(b.store.run, run.id)
    location = None if view is None else s3_location(view, path)
    if location is not None and path.startswith("artifacts/"):
        return await send_stored(request, b, location, name)
    try:
        fh = await b.read(files.open_run_file, b.config.runs_dir, run.id, path)
    except NotFound:
        if location is None:
            raise
        return await send_stored(request, b, location, name)  # a bare name, kept in S3
    return await send_file(request, b, fh, name)


async def send_stored(request: Request, b: Backend, location: str, name: str) -> HTTPResponse:
    """Stream an artifact kept in the S3 artifact store."""
    stored = await b.read(s3_store(request).open, location)
    return await send_reader(request, b, stored.reader, stored.size, name)


def with_stored_artifacts(
    found: list[schemas.ArtifactOut], run: RunView | None
) -> list[schemas.ArtifactOut]:
    """The run directory's files plus the artifacts the run keeps in an S3 store."""
    if run is None:
        return found
    listed = {f.path for f in found}
    extra = [
        schemas.ArtifactOut(path=f"artifacts/{a.path}", size=a.size, modified=a.saved_at)
        for a in run.artifacts
        if s3_location(run, a.path) is not None and f"artifacts/{a.path}" not in listed
    ]
    return sorted([*found, *extra], key=lambda f: f.path) if extra else found


_RUN = "/runs/<run_id:str>"
ROUTES = [
    Route(
        "GET",
        "/runs",
        list_runs,
        "List runs, newest first; with sort, order, offset, q or counts: one page of "
        "them, with how many match.",
        response=schemas.RunsResponse,
        query=(
            Query("status", {"type": "string", "maxLength": 200}),
            Query("tag", {"type": "string", "maxLength": 200}),
            Query("limit", int_schema(1, 10_000, 100)),
            Query(
                "archived",
                {"type": "string", "enum": ["exclude", "only", "include"], "default": "exclude"},
                "archived runs: left out (default), alone, or with the rest",
            ),
            Query(
                "sort",
                {"type": "string", "maxLength": 500, "default": "started_at"},
                "a page sorted by started_at, duration, tags, name, status or a dotted "
                "key (config.lr, summary.val/loss); runs without a value last",
            ),
            Query("order", {"type": "string", "enum": ["asc", "desc"], "default": "desc"}),
            Query("offset", int_schema(0, 10**9, 0), "runs of the page's order to skip"),
            Query(
                "q",
                {"type": "string", "maxLength": 500},
                "words that id, name, tags and status must all hold (any case)",
            ),
            Query(
                "counts",
                {"type": "boolean", "default": False},
                "with the page, how many runs have each status",
            ),
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
        f"{_RUN}/tail",
        run_tail,
        "The last rows of a run's metrics or system file.",
        response=schemas.TailResponse,
        query=(
            Query("file", {"type": "string", "enum": ["metrics", "system"]}, "which file"),
            Query("rows", int_schema(0, 100_000, 50), "how many rows"),
        ),
    ),
    Route(
        "GET",
        f"{_RUN}/artifacts",
        run_artifacts,
        "A run's files (paths relative to its directory; saved artifacts under artifacts/).",
        response=schemas.ArtifactsResponse,
    ),
    Route(
        "GET",
        f"{_RUN}/artifacts/<path:path>",
        run_artifact,
        "Download one file of a run (a bare name falls back to artifacts/NAME).",
        content_type="application/octet-stream",
    ),
]
