"""Run and job management: ``/runs/{id}/rename``, ``/tags``, ``/note``, ``/config``,
``/archive``, ``/unarchive``, ``/delete`` and ``/jobs/clean`` (all POST).

Run ids are exact, never prefixes (a write must not land on whichever run a prefix
happens to match; the CLI resolves a prefix with ``GET /runs/{ref}`` first). Each answers
with the run as it is after the change, but ``delete`` (what was removed) and ``clean``
(the jobs dropped). A run token (a job's own script) may use ``tags``, ``note`` and
``config`` for its own run (``whirr.api.run_tokens``); the rest need a ``submit`` token.
"""

from __future__ import annotations

from sanic import HTTPResponse, Request

from whirr.api.artifact_access import s3_store, uploads
from whirr.api.routes.run_events import known_run
from whirr.api.routing import Route, backend
from whirr.services.errors import InvalidRequest
from whirr.services.server_removal import remove_server_files
from whirr.web.http import body, respond
from whirr.wire import schemas
from whirr.wire.run_manage import (
    CleanRequest,
    CleanResponse,
    RunConfigRequest,
    RunDeleteResponse,
    RunNoteRequest,
    RunRenameRequest,
    RunTagsRequest,
)


async def rename_run(request: Request, run_id: str) -> HTTPResponse:
    """Give a run a new name."""
    req = body(request, RunRenameRequest)
    b = backend(request)
    await b.read(known_run, b.store, run_id)
    return respond(await b.write_and_wake(b.whirr.rename_run, run_id, req.name))


async def run_tags(request: Request, run_id: str) -> HTTPResponse:
    """Add and remove a run's tags."""
    req = body(request, RunTagsRequest)
    if not req.add and not req.remove:
        raise InvalidRequest("give tags to add or to remove")
    b = backend(request)
    await b.read(known_run, b.store, run_id)
    return respond(await b.write_and_wake(b.whirr.tag_run, run_id, req.add, req.remove))


async def run_note(request: Request, run_id: str) -> HTTPResponse:
    """Set a run's note, or append a paragraph to it."""
    req = body(request, RunNoteRequest)
    b = backend(request)
    await b.read(known_run, b.store, run_id)
    run = await b.write_and_wake(b.whirr.note_run, run_id, req.text, append=req.append)
    return respond(run)


async def run_config(request: Request, run_id: str) -> HTTPResponse:
    """Merge config values set after the run started (``run.config.update(...)``)."""
    req = body(request, RunConfigRequest)
    b = backend(request)
    await b.read(known_run, b.store, run_id)
    return respond(await b.write_and_wake(b.whirr.update_run_config, run_id, req.config))


async def archive_run(request: Request, run_id: str) -> HTTPResponse:
    """Hide a run from default listings (kept, with its files)."""
    b = backend(request)
    await b.read(known_run, b.store, run_id)
    return respond(await b.write_and_wake(b.whirr.archive_run, run_id, True))


async def unarchive_run(request: Request, run_id: str) -> HTTPResponse:
    """Show an archived run in default listings again."""
    b = backend(request)
    await b.read(known_run, b.store, run_id)
    return respond(await b.write_and_wake(b.whirr.archive_run, run_id, False))


async def delete_run(request: Request, run_id: str) -> HTTPResponse:
    """Delete a run: gone from every view, its directory, shipping index, partial
    uploads and S3 objects removed (409 while it runs or its job may still write to
    it; 410 ``run_deleted`` once deleted, for this and every upload or start)."""
    b = backend(request)
    run = await b.read(known_run, b.store, run_id)
    deleted = await b.write_and_wake(b.whirr.delete_run, run_id)
    # Then what the server holds beside the run directory (shipping index, partial
    # uploads, S3 objects): after run.deleted, so a later upload is refused (410).
    found, more = await b.read(
        remove_server_files,
        run,
        request.app.ctx.shipping,
        uploads(request),
        lambda: s3_store(request),
    )
    if found:
        message = f"{deleted.message}; {more}" if more else deleted.message
        deleted = RunDeleteResponse(run_id=run_id, message=message, files_removed=True)
    return respond(deleted)


async def clean_jobs(request: Request) -> HTTPResponse:
    """Drop ended jobs from the queue's views (listings, status counts); runs stay."""
    req = body(request, CleanRequest)
    b = backend(request)
    return respond(await b.write_and_wake(b.whirr.clean, req.older_than_seconds, req.statuses))


_RUN = "/runs/<run_id:str>"
ROUTES = [
    Route(
        "POST",
        f"{_RUN}/rename",
        rename_run,
        "Give a run a new name.",
        body=RunRenameRequest,
        response=schemas.Run,
        scope="submit",
    ),
    Route(
        "POST",
        f"{_RUN}/tags",
        run_tags,
        "Add and remove a run's tags.",
        body=RunTagsRequest,
        response=schemas.Run,
        scope="submit",
    ),
    Route(
        "POST",
        f"{_RUN}/note",
        run_note,
        "Set a run's note (or append a paragraph).",
        body=RunNoteRequest,
        response=schemas.Run,
        scope="submit",
    ),
    Route(
        "POST",
        f"{_RUN}/config",
        run_config,
        "Merge config values set after the run started.",
        body=RunConfigRequest,
        response=schemas.Run,
        scope="submit",
    ),
    Route(
        "POST",
        f"{_RUN}/archive",
        archive_run,
        "Hide a run from default listings.",
        response=schemas.Run,
        scope="submit",
    ),
    Route(
        "POST",
        f"{_RUN}/unarchive",
        unarchive_run,
        "Show an archived run in default listings again.",
        response=schemas.Run,
        scope="submit",
    ),
    Route(
        "POST",
        f"{_RUN}/delete",
        delete_run,
        "Delete a run and its files (refused while it runs).",
        response=RunDeleteResponse,
        scope="submit",
    ),
    Route(
        "POST",
        "/jobs/clean",
        clean_jobs,
        "Drop ended jobs from the queue's views (pueue's clean).",
        body=CleanRequest,
        response=CleanResponse,
        scope="submit",
    ),
]
