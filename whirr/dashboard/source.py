"""Where the dashboard's data comes from: one ``Whirr`` (``whirr.facade``), a local
project's, the server's it is mounted in, or a remote server's, asked the same questions.

``Source`` asks the facade everything it shows and changes (status, jobs, runs, the runs
index, logs, events, cancel and retry, run management), off the event loop. Two things
depend on where the dashboard runs, and are all a subclass adds:

- how it runs blocking calls and hears of new events: ``StoreSource`` (this module) sits
  beside the store, on a ``Backend``'s thread pools and its ``HeadWatcher``;
  ``RemoteSource`` (``remote.py``) has a pool of its own and polls the log's head;
- how it reads metric columns: ``StoreSource`` parses the run files on this machine
  (with the column cache and polars), ``RemoteSource`` pages them through the facade.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import time
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from sanic import HTTPResponse, Request

from whirr.dashboard import column_cache
from whirr.dashboard.runs_index import Query, facts_of, make_row
from whirr.dashboard.series import Columns, SeriesCache, read_new_lines
from whirr.facade import Whirr
from whirr.facade.where import files_location
from whirr.services import run_files as files
from whirr.store.runs_page import RunsPage
from whirr.web.backend import Backend
from whirr.web.download import send_file
from whirr.wire import schemas
from whirr.wire.files_location import FilesLocation
from whirr.wire.run_manage import RunDeleteResponse

T = TypeVar("T")
log = logging.getLogger("whirr.dashboard")
#: Bytes of ``output.log`` a page shows at first (its tail).
LOG_TAIL = 64 * 1024
FILES = {"metrics": "metrics.jsonl", "system": "system.jsonl"}
#: Events a change batch carries at most (pages refetch what they show anyway).
CHANGES_BATCH = 500
#: The facade's run management calls the dashboard makes (``Source.change_run``).
RUN_CHANGES = frozenset({"rename_run", "tag_run", "note_run", "archive_run"})
#: The runs whose config and summary keys and tags the runs table offers (the newest).
FACTS_SAMPLE = 2000
#: Seconds the runs table's facts are kept while the log moves.
FACTS_TTL = 10.0


@dataclass(frozen=True)
class Change:
    """One event of the log, as the browser hears of it (no payload: pages refetch)."""

    position: int
    type: str
    stream: str


class Source(ABC):
    """The dashboard's view of one whirr installation, through its facade."""

    #: ``local`` (a project), ``server`` (mounted in ``whirr server``) or ``remote``.
    kind: str = "local"
    #: What the header says this dashboard shows (a project path or a server URL).
    label: str = ""

    def __init__(self, whirr: Whirr) -> None:
        self.whirr = whirr
        self.series = SeriesCache()
        self._prefetching: set[asyncio.Task[None]] = set()
        #: The runs table's facts per ``archived`` filter: (head, when read, facts).
        self._facts_cache: dict[bool | None, tuple[int, float, dict[str, Any]]] = {}

    # -- what a subclass decides ----------------------------------------------------
    @abstractmethod
    async def call(self, fn: Callable[..., T], *args: Any) -> T:
        """Run a blocking read of the facade off the event loop."""

    async def change(self, fn: Callable[..., T], *args: Any) -> T:
        """Run a blocking write of the facade off the event loop."""
        return await self.call(fn, *args)

    @abstractmethod
    async def head(self) -> int:
        """The log's newest position."""

    @abstractmethod
    async def wait_beyond(self, after: int, timeout: float) -> bool:
        """True once the log's head passed ``after``; False after ``timeout``."""

    @abstractmethod
    async def columns(self, run_id: str, kind: str) -> Columns:
        """The run's metrics (``kind="metrics"``) or system samples, refreshed."""

    # -- the facade's answers ---------------------------------------------------------
    async def status(self) -> schemas.StatusResponse:
        """Job counts per status and worker counts."""
        return await self.call(self.whirr.status)

    async def workers(self) -> list[schemas.WorkerOut]:
        """Every known worker."""
        return await self.call(self.whirr.workers)

    async def jobs(self, statuses: list[str] | None, limit: int) -> list[schemas.Job]:
        """Jobs newest first, optionally only some statuses."""
        return await self.call(self.whirr.jobs, statuses, limit)

    async def job(self, job_id: int) -> schemas.Job:
        """One job (NotFound when absent)."""
        return await self.call(self.whirr.job, job_id)

    async def run(self, run_id: str) -> schemas.Run:
        """One run by id or unique prefix (NotFound when absent)."""
        return await self.call(self.whirr.run, run_id)

    async def runs_table(self, query: Query) -> dict[str, Any]:
        """One page of the runs table with the facts its filters need: the store
        filters, sorts and pages (through the server's API for a remote dashboard), so
        nothing here grows with the runs."""
        head = await self.head()
        found = await self.call(self.whirr.runs_page, query.page())
        facts = await self._facts(head, query.archived)
        return {
            "total": sum(facts["statuses"].values()),
            "matched": found.matched,
            "offset": query.offset,
            "rows": [make_row(run).to_json() for run in found.runs],
            "head": head,
            **facts,
        }

    async def _facts(self, head: int, archived: bool | None) -> dict[str, Any]:
        """Status counts (exact) and the keys and tags of the newest ``FACTS_SAMPLE``
        runs; read again once the log moved and ``FACTS_TTL`` seconds passed (a busy
        log would otherwise have every page load count every run again)."""
        cached = self._facts_cache.get(archived)
        now = time.monotonic()
        if cached is not None and (cached[0] == head or now - cached[1] < FACTS_TTL):
            return cached[2]
        facts = await self.call(read_facts, self.whirr, archived)
        self._facts_cache[archived] = (head, now, facts)
        return facts

    async def recent_runs(self, limit: int) -> list[dict[str, Any]]:
        """The newest runs, as table rows."""
        return [
            make_row(run).to_json() for run in await self.call(self.whirr.runs, None, None, limit)
        ]

    async def artifacts(self, run_id: str) -> list[schemas.ArtifactOut]:
        """The run's artifact files."""
        return await self.call(self.whirr.artifacts, run_id)

    async def files_location(self, run: schemas.Run) -> FilesLocation:
        """Where the run's files really are (local, shared, shipped and how far)."""
        return await self.call(files_location, self.whirr, run)

    async def artifact(self, request: Request, run_id: str, path: str) -> HTTPResponse:
        """One artifact as a download response."""
        data = await self.call(self.whirr.read_artifact, run_id, path)
        name = path.rsplit("/", 1)[-1].replace('"', "")
        return HTTPResponse(
            data,
            content_type="application/octet-stream",
            headers={"Content-Disposition": f'attachment; filename="{name}"'},
        )

    async def log(self, run: schemas.Run, offset: int | None) -> tuple[bytes, int]:
        """The output of the run's job from ``offset`` (its tail when None): (bytes,
        offset after). A direct run has no captured output."""
        if run.job_id is None:
            return b"", 0
        if offset is None:
            start, data = await self.call(self.whirr.log_tail, run.job_id, LOG_TAIL)
            return data, start + len(data)
        data = await self.call(self.whirr.read_log, run.job_id, offset)
        return data, offset + len(data)

    async def cancel(self, job_id: int) -> str:
        """Cancel a job; returns a message for the person who asked."""
        return (await self.change(self.whirr.cancel, job_id)).message

    async def retry(self, job_id: int) -> int:
        """Queue a failed/cancelled job again; returns the new job's id."""
        return (await self.change(self.whirr.retry, job_id)).id

    async def change_run(self, method: str, ref: str, *args: Any, **kwargs: Any) -> schemas.Run:
        """One of the facade's run management calls (``rename_run``, ``tag_run``,
        ``note_run``, ``archive_run``) on the run ``ref``; the run as it is after."""
        if method not in RUN_CHANGES:
            raise ValueError(f"not a run management call: {method}")
        call = functools.partial(getattr(self.whirr, method), ref, *args, **kwargs)
        run: schemas.Run = await self.change(call)
        return run

    async def delete_run(self, ref: str) -> RunDeleteResponse:
        """Delete a run (refused while it runs or its job may still write to it)."""
        return await self.change(self.whirr.delete_run, ref)

    async def changes(self, after: int, timeout: float) -> list[Change]:
        """Events after ``after``, waiting up to ``timeout`` for the first one."""
        if not await self.wait_beyond(after, timeout):
            return []
        return await self.call(read_changes, self.whirr, after)

    @property
    def cache_dir(self) -> Path | None:
        """Where the dashboard may keep files between starts (None: nowhere)."""
        return None

    def prefetch(self, run_id: str) -> None:
        """Begin reading a run's metrics in the background (errors are the page's to
        report when it asks for them)."""

        async def load() -> None:
            with contextlib.suppress(Exception):
                await self.columns(run_id, "metrics")

        task = asyncio.get_running_loop().create_task(load())
        self._prefetching.add(task)  # a reference, so the task is not collected mid-way
        task.add_done_callback(self._prefetching.discard)

    def close(self) -> None:  # noqa: B027  (most sources hold nothing of their own)
        """Release what the source holds (not the facade: its opener closes it)."""


def read_changes(whirr: Whirr, after: int) -> list[Change]:
    """Up to ``CHANGES_BATCH`` events after ``after``."""
    out = []
    for event in whirr.events(after):
        out.append(Change(event.position, event.type, event.stream))
        if len(out) >= CHANGES_BATCH:
            break
    return out


def read_facts(whirr: Whirr, archived: bool | None) -> dict[str, Any]:
    """The runs table's facts, in one question: exact status counts, and the config and
    summary keys and the tags of the newest ``FACTS_SAMPLE`` runs (a key or tag only
    older runs have is still sortable and filterable by its address)."""
    newest = whirr.runs_page(RunsPage(limit=FACTS_SAMPLE, archived=archived), counts=True)
    return facts_of((make_row(run) for run in newest.runs), newest.statuses or {})


class StoreSource(Source):
    """The facade of a store read in-process (``Backend.whirr``), on the ``Backend``'s
    thread pools, woken by its head watcher; metric columns parsed from the run files on
    this machine and cached as runs end."""

    def __init__(self, backend: Backend, kind: str, label: str) -> None:
        super().__init__(backend.whirr)
        self.b = backend
        self.kind = kind
        self.label = label

    @property
    def runs_dir(self) -> Path:
        """Where run files live."""
        return self.b.config.runs_dir

    @property
    def cache_dir(self) -> Path | None:
        return column_cache.cache_dir(self.runs_dir)

    async def call(self, fn: Callable[..., T], *args: Any) -> T:
        return await self.b.read(fn, *args)

    async def change(self, fn: Callable[..., T], *args: Any) -> T:
        return await self.b.write_and_wake(fn, *args)

    async def head(self) -> int:
        return self.b.heads.head

    async def wait_beyond(self, after: int, timeout: float) -> bool:
        return await self.b.heads.wait_beyond(after, timeout)

    async def columns(self, run_id: str, kind: str) -> Columns:
        path = files.run_file(self.runs_dir, run_id, FILES[kind])
        columns = self.series.get(run_id, kind)
        cache = column_cache.cache_path(self.runs_dir, run_id, kind)

        def refresh() -> bool:
            with columns.lock:
                if not columns.cache_checked:
                    columns.cache_checked = True
                    column_cache.load(cache, path, columns)
                before = columns.offset
                read_new_lines(path, columns)
                return columns.offset - before >= column_cache.MIN_BYTES

        if await self.b.read(refresh):
            # A long parse is worth keeping for the next start; written in the background,
            # a little later, so the page that asked is served first (making the time
            # column and writing tens of MB compete with it for the CPU).
            loop = asyncio.get_running_loop()
            loop.call_later(
                column_cache.SAVE_AFTER_S,
                loop.run_in_executor,
                None,
                column_cache.save_columns,
                cache,
                path,
                columns,
            )
        return columns

    async def cache_finished_runs(self) -> None:
        """Follow the log for as long as the dashboard runs and build the column cache of
        each run that finishes (one at a time, on the read pool): its first view then
        loads the cache instead of parsing a long JSONL."""
        after = await self.head()
        while True:
            if not await self.b.heads.wait_beyond(after, 60):
                continue
            head = self.b.heads.head
            finished, last = await self.b.read(_finished_runs, self.whirr, after)
            after = max(head, last)
            for run_id in finished:
                for kind, name in FILES.items():
                    source = files.run_file(self.runs_dir, run_id, name)
                    cache = column_cache.cache_path(self.runs_dir, run_id, kind)
                    try:
                        await self.b.read(column_cache.build, cache, source)
                    except Exception:  # one unreadable run must not stop the others
                        log.exception("could not cache the columns of %s", source)

    async def artifact(self, request: Request, run_id: str, path: str) -> HTTPResponse:
        # Streamed from the file that passed the checks, not read whole into memory.
        fh = await self.b.read(files.open_artifact, self.runs_dir, run_id, path)
        return await send_file(request, self.b, fh, path.rsplit("/", 1)[-1])


def _finished_runs(whirr: Whirr, after: int) -> tuple[list[str], int]:
    """The runs that finished after ``after``, and the position of the last such event."""
    ids, last = [], after
    for event in whirr.events(after, types=["run.finished"]):
        run_id = event.event.get("run_id")
        if isinstance(run_id, str):
            ids.append(run_id)
        last = event.position
    return ids, last
