"""The dashboard's JSON endpoints (under ``/ui``): what each page fetches, already shaped
for drawing (tables paged and sorted, metric series downsampled on the server)."""

from __future__ import annotations

import asyncio
import gzip
from typing import Any
from urllib.parse import unquote

import msgspec
from sanic import HTTPResponse, Request

from whirr.analytics.downsample import METHODS, Method
from whirr.clock import utc_now
from whirr.dashboard.runs_index import Query, flatten
from whirr.dashboard.series import Columns
from whirr.dashboard.source import Source
from whirr.projections.jobs import FINISHED_STATUSES
from whirr.services import run_files as files
from whirr.services.errors import InvalidRequest
from whirr.web.http import body, checked_id, query_int, query_str
from whirr.wire import schemas
from whirr.wire.run_manage import (
    RunNoteRequest,
    RunRenameRequest,
    RunTagsRequest,
    archived_flag,
)

_json = msgspec.json.Encoder()
#: Answers larger than this are gzipped when the browser accepts it.
GZIP_OVER = 2048
MAX_COMPARE = 50
X_AXES = ("step", "time", "wall", "index")


def source_of(request: Request) -> Source:
    """The dashboard's data source."""
    value: Source = request.app.ctx.dashboard_source
    return value


def reply(request: Request, value: Any, status: int = 200) -> HTTPResponse:
    """JSON (msgspec-encoded), gzipped when large and accepted; never cached."""
    body = _json.encode(value)
    headers = {"Cache-Control": "no-store"}
    if len(body) > GZIP_OVER and "gzip" in request.headers.get("accept-encoding", ""):
        body = gzip.compress(body, 5)
        headers["Content-Encoding"] = "gzip"
        headers["Vary"] = "Accept-Encoding"
    return HTTPResponse(body, status=status, headers=headers, content_type="application/json")


async def overview(request: Request) -> HTTPResponse:
    """Counts, workers, running and queued jobs, the latest runs."""
    src = source_of(request)
    status = await src.status()
    workers = await src.workers()
    running = await src.jobs(["running"], 200)
    queued = await src.jobs(["queued"], 10)
    recent = await src.recent_runs(12)
    return reply(
        request,
        {
            "status": status,
            "workers": workers,
            "running": running,
            "queued": queued,
            "recent_runs": recent,
            "now": utc_now(),
            "head": status.head,
        },
    )


async def queue(request: Request) -> HTTPResponse:
    """Active jobs (running first, then queued in claim order) and recently ended ones."""
    limit = query_int(request, "limit", 100, 1, 1000) or 100
    return reply(request, await queue_data(source_of(request), limit))


async def queue_data(src: Source, limit: int) -> dict[str, Any]:
    """What the queue page shows (the JSON endpoint and the server-rendered first view)."""
    head = await src.head()
    active = await src.jobs(["queued", "running"], 1000)
    # What runs now first, then what a worker will take next (priority, then age).
    active.sort(key=lambda j: (j.status != "running", -_priority(j), j.id))
    ended = await src.jobs(list(FINISHED_STATUSES), limit)
    return {"active": active, "ended": ended, "now": utc_now(), "head": head}


def _priority(job: schemas.Job) -> int:
    return getattr(job, "priority", 0) or 0


async def runs_table(request: Request) -> HTTPResponse:
    """One page of the runs table (filter, sort, offset)."""
    order = query_str(request, "order") or "desc"
    if order not in ("asc", "desc"):
        raise InvalidRequest("order must be asc or desc")
    archived = query_str(request, "archived") or "exclude"
    if archived not in ("exclude", "only", "include"):
        raise InvalidRequest("archived must be exclude, only or include")
    query = Query(
        text=query_str(request, "q") or "",
        status=query_str(request, "status"),
        tag=query_str(request, "tag"),
        sort=query_str(request, "sort", 500) or "started_at",
        descending=order == "desc",
        offset=query_int(request, "offset", 0, 0, 10**9) or 0,
        limit=query_int(request, "limit", 100, 1, 1000) or 100,
        archived=archived_flag(archived),
    )
    return reply(request, await source_of(request).runs_table(query))


async def run_detail(request: Request, run_id: str) -> HTTPResponse:
    """A run with its job, artifacts and which metric series it has."""
    src = source_of(request)
    run = await src.run(run_id)
    job = await src.job(run.job_id) if run.job_id is not None else None
    artifacts = await src.artifacts(run.id)
    location = await src.files_location(run)
    metrics = await src.columns(run.id, "metrics")
    system = await src.columns(run.id, "system")
    return reply(
        request,
        {
            "run": run,
            "job": job,
            "artifacts": artifacts,
            "files_location": location,
            "config_flat": flatten(run.config),
            "metrics": {"keys": metrics.keys, "rows": metrics.rows, "last": metrics.last()},
            "system": {"keys": system.keys, "rows": system.rows},
            "kind": src.kind,
            "now": utc_now(),
            "head": await src.head(),
        },
    )


def _series_args(request: Request) -> tuple[str, int, Method]:
    x = query_str(request, "x") or "step"
    if x not in X_AXES:
        raise InvalidRequest(f"x must be one of {', '.join(X_AXES)}")
    points = query_int(request, "points", 1000, 10, 10_000) or 1000
    method = query_str(request, "method") or "minmax"
    if method not in METHODS:
        raise InvalidRequest(f"method must be one of {', '.join(METHODS)}")
    return x, points, method


async def run_series(request: Request, run_id: str) -> HTTPResponse:
    """Every (or the chosen) metric of a run, each drawn down to about ``points``."""
    x, points, method = _series_args(request)
    kind = query_str(request, "kind") or "metrics"
    if kind not in ("metrics", "system"):
        raise InvalidRequest("kind must be metrics or system")
    wanted = query_str(request, "keys", 5000)
    src = source_of(request)
    run = await src.run(run_id)
    columns = await src.columns(run.id, kind)

    def draw() -> dict[str, Any]:
        # Everything in one answer is read under one hold of the lock, so its row count,
        # its series and its last values describe the same rows (the page shows the
        # count in two places; read apart, they disagreed while the run was writing).
        with columns.lock:
            keys = columns.logged_keys if wanted is None else [k for k in wanted.split(",") if k]
            return {
                "rows": columns.rows,
                "series": [columns.series(k, x, points, method) for k in keys],
                "last": columns.last() if wanted is None else {},
            }

    # Downsampling a million points takes tens of milliseconds: not on the event loop.
    drawn = await asyncio.get_running_loop().run_in_executor(None, draw)
    return reply(request, {"run": run.id, "kind": kind, "x": x, **drawn})


async def run_log(request: Request, run_id: str) -> HTTPResponse:
    """``output.log``: its tail, or what follows ``offset``."""
    raw = request.args.get("offset")
    offset = query_int(request, "offset", 0, 0, 2**62) if raw not in (None, "") else None
    src = source_of(request)
    run = await src.run(run_id)
    data, end = await src.log(run, offset)
    whole = _utf8_prefix(data)
    # A multi-byte character cut at the chunk's end is sent with the next chunk.
    end -= len(data) - whole
    return reply(
        request,
        {
            "text": data[:whole].decode("utf-8", "replace"),
            "offset": end,
            "ended": run.finished_at is not None,
        },
    )


def _utf8_prefix(data: bytes) -> int:
    """Length of the longest prefix of ``data`` that does not end mid-character."""
    for back in range(1, min(4, len(data)) + 1):
        byte = data[-back]
        if byte & 0xC0 != 0x80:  # the start of the last character
            need = (
                1
                if byte < 0x80
                else 2
                if byte >> 5 == 0b110
                else 3
                if byte >> 4 == 0b1110
                else 4
                if byte >> 3 == 0b11110
                else 1
            )
            return len(data) if back >= need else len(data) - back
    return len(data)


async def run_artifact(request: Request, run_id: str, path: str) -> HTTPResponse:
    """Download one artifact."""
    src = source_of(request)
    run = await src.run(run_id)
    # sanic hands the path over still percent-encoded (``my%20model.pt``).
    return await src.artifact(request, run.id, unquote(path))


def run_ids(request: Request) -> list[str]:
    """The ``runs`` the address names (ids or unique prefixes, at most ``MAX_COMPARE``)."""
    raw = query_str(request, "runs", 20_000) or ""
    ids = list(dict.fromkeys(r for r in raw.split(",") if r))
    if len(ids) > MAX_COMPARE:
        raise InvalidRequest(f"compare at most {MAX_COMPARE} runs at once")
    return [files.check_run_id(r) for r in ids]


async def compare(request: Request) -> HTTPResponse:
    """The chosen runs side by side: config differences, summaries, shared metrics."""
    return reply(request, await compare_data(source_of(request), run_ids(request)))


async def compare_data(src: Source, ids: list[str]) -> dict[str, Any]:
    """What the compare page shows of the runs ``ids`` (the JSON endpoint and the first
    view)."""
    runs = [await src.run(r) for r in ids]
    metric_keys: set[str] = set()
    for run in runs:
        metric_keys.update((await src.columns(run.id, "metrics")).keys)
    configs = [flatten(r.config) for r in runs]
    summaries = [flatten(r.summary) for r in runs]
    return {
        "runs": [
            {
                "id": r.id,
                "name": r.name,
                "status": r.status,
                "tags": r.tags,
                "started_at": r.started_at,
                "duration": r.duration_seconds,
                "config": c,
                "summary": s,
            }
            for r, c, s in zip(runs, configs, summaries, strict=True)
        ],
        "config_diff": diff_table(configs),
        "summary_keys": _keys(summaries),
        "metric_keys": sorted(metric_keys),
        "head": await src.head(),
    }


def diff_table(configs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One row per config key: each run's value and whether they differ (differing
    keys first, so what changed between runs is what one reads first)."""
    rows = []
    for key in _keys(configs):
        values = [c.get(key) for c in configs]
        differs = len({_json.encode(v) for v in values}) > 1
        rows.append({"key": key, "values": values, "differs": differs})
    rows.sort(key=lambda r: not r["differs"])
    return rows


def _keys(dicts: list[dict[str, Any]]) -> list[str]:
    return sorted({k for d in dicts for k in d})


async def compare_series(request: Request) -> HTTPResponse:
    """One metric of several runs, each drawn down to about ``points``."""
    x, points, method = _series_args(request)
    key = query_str(request, "key", 1000)
    if not key:
        raise InvalidRequest("query parameter 'key' (the metric) is required")
    src = source_of(request)
    out = []
    for run_id in run_ids(request):
        run = await src.run(run_id)
        columns = await src.columns(run.id, "metrics")

        def draw(columns: Columns = columns) -> dict[str, Any]:
            with columns.lock:
                return columns.series(key, x, points, method)

        series = await asyncio.get_running_loop().run_in_executor(None, draw)
        out.append({**series, "run": run.id, "name": run.name, "status": run.status})
    return reply(request, {"key": key, "x": x, "series": out})


async def rename_run(request: Request, run_id: str) -> HTTPResponse:
    """Give a run a new name (``{name}``, as ``POST /api/v1/runs/{id}/rename``)."""
    given = body(request, RunRenameRequest)
    run = await source_of(request).change_run("rename_run", run_id, given.name)
    return reply(request, {"message": f"Renamed {run.id} to {run.name}", "run": run})


async def tag_run(request: Request, run_id: str) -> HTTPResponse:
    """Add and remove a run's tags (``{add, remove}``)."""
    given = body(request, RunTagsRequest)
    if not given.add and not given.remove:
        raise InvalidRequest("give tags to add or to remove")
    run = await source_of(request).change_run("tag_run", run_id, given.add, given.remove)
    return reply(
        request, {"message": f"Tags of {run.id}: {', '.join(run.tags) or 'none'}", "run": run}
    )


async def note_run(request: Request, run_id: str) -> HTTPResponse:
    """Set a run's note (``{text, append}``)."""
    given = body(request, RunNoteRequest)
    run = await source_of(request).change_run("note_run", run_id, given.text, append=given.append)
    return reply(request, {"message": "Note saved" if run.notes else "Note cleared", "run": run})


async def archive_run(request: Request, run_id: str) -> HTTPResponse:
    """Hide a run from default listings."""
    run = await source_of(request).change_run("archive_run", run_id, True)
    return reply(request, {"message": f"Archived {run.id}", "run": run})


async def unarchive_run(request: Request, run_id: str) -> HTTPResponse:
    """Show an archived run in default listings again."""
    run = await source_of(request).change_run("archive_run", run_id, False)
    return reply(request, {"message": f"Unarchived {run.id}", "run": run})


async def delete_run(request: Request, run_id: str) -> HTTPResponse:
    """Delete a run for good (files removed); refused while it runs. The page asks for a
    confirmation first; this route is a POST with the CSRF token like every write."""
    done = await source_of(request).delete_run(run_id)
    return reply(request, {"message": done.message, "run_id": done.run_id})


async def cancel_job(request: Request, job_id: int) -> HTTPResponse:
    """Cancel a job (a POST with a CSRF token; see ``security``)."""
    message = await source_of(request).cancel(checked_id(job_id))
    return reply(request, {"message": message, "job_id": job_id})


async def retry_job(request: Request, job_id: int) -> HTTPResponse:
    """Queue a failed or cancelled job again."""
    new_id = await source_of(request).retry(checked_id(job_id))
    return reply(
        request, {"message": f"Queued job #{new_id} (retry of #{job_id})", "job_id": new_id}
    )
