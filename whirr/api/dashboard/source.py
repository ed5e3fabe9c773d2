"""Where the dashboard's data comes from: a store it can read directly (a local project,
or the server it is mounted in) or a whirr server over HTTP (``remote.py``).

Every method is async; the store-backed source runs the synchronous core on the
``Backend``'s thread pools, never on the event loop. Writes are limited to what a person
does from the dashboard: cancel and retry.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from abc import ABC, abstractmethod
from dataclasses import dataclass
from pathlib import Path

from sanic import HTTPResponse, Request

from whirr.api import files
from whirr.api.backend import Backend
from whirr.api.dashboard import column_cache
from whirr.api.dashboard.runs_index import RUN_EVENT_TYPES, RunsIndex
from whirr.api.dashboard.series import Columns, SeriesCache, read_new_lines
from whirr.api.download import send_file
from whirr.api.render import job_out, run_out, worker_out
from whirr.api.routes.runs import find_run
from whirr.clock import utc_now
from whirr.projections import RunView
from whirr.runfiles import UnsafePath, read_from
from whirr.store import EventStore
from whirr.wire import schemas

log = logging.getLogger("whirr.dashboard")
#: Bytes of ``output.log`` a page shows at first (its tail).
LOG_TAIL = 64 * 1024
FILES = {"metrics": "metrics.jsonl", "system": "system.jsonl"}


@dataclass(frozen=True)
class Change:
    """One event of the log, as the browser hears of it (no payload: pages refetch)."""

    position: int
    type: str
    stream: str


class Source(ABC):
    """The dashboard's view of one whirr installation."""

    #: ``local`` (a project), ``server`` (mounted in ``whirr server``) or ``remote``.
    kind: str = "local"
    #: What the header says this dashboard shows (a project path or a server URL).
    label: str = ""

    def __init__(self) -> None:
        self.series = SeriesCache()
        self._prefetching: set[asyncio.Task[None]] = set()

    @abstractmethod
    async def head(self) -> int:
        """The log's newest position."""

    @abstractmethod
    async def status(self) -> schemas.StatusResponse:
        """Job counts per status and worker counts."""

    @abstractmethod
    async def workers(self) -> list[schemas.WorkerOut]:
        """Every known worker."""

    @abstractmethod
    async def jobs(self, statuses: list[str] | None, limit: int) -> list[schemas.Job]:
        """Jobs newest first, optionally only some statuses."""

    @abstractmethod
    async def job(self, job_id: int) -> schemas.Job:
        """One job (NotFound when absent)."""

    @abstractmethod
    async def run(self, run_id: str) -> schemas.Run:
        """One run by id or unique prefix (NotFound when absent)."""

    @abstractmethod
    async def runs_index(self) -> RunsIndex:
        """Every run, kept current."""

    @abstractmethod
    async def columns(self, run_id: str, kind: str) -> Columns:
        """The run's metrics (``kind="metrics"``) or system samples, refreshed."""

    @abstractmethod
    async def artifacts(self, run_id: str) -> list[schemas.ArtifactOut]:
        """The run's artifact files."""

    @abstractmethod
    async def artifact(self, request: Request, run_id: str, path: str) -> HTTPResponse:
        """One artifact as a download response."""

    @abstractmethod
    async def log(self, run: schemas.Run, offset: int | None) -> tuple[bytes, int]:
        """``output.log`` from ``offset`` (its tail when None): (bytes, offset after)."""

    @abstractmethod
    async def cancel(self, job_id: int) -> str:
        """Cancel a job; returns a message for the person who asked."""

    @abstractmethod
    async def retry(self, job_id: int) -> int:
        """Queue a failed/cancelled job again; returns the new job's id."""

    @abstractmethod
    async def changes(self, after: int, timeout: float) -> list[Change]:
        """Events after ``after``, waiting up to ``timeout`` for the first one."""

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
        """Release what the source holds."""


class StoreSource(Source):
    """A store read in-process through a ``Backend`` (its thread pools and head watcher)."""

    def __init__(self, backend: Backend, kind: str, label: str) -> None:
        super().__init__()
        self.b = backend
        self.kind = kind
        self.label = label
        self._index = RunsIndex()
        self._index_lock = asyncio.Lock()

    @property
    def runs_dir(self) -> Path:
        """Where run files live."""
        return self.b.config.runs_dir

    @property
    def cache_dir(self) -> Path | None:
        return column_cache.cache_dir(self.runs_dir)

    async def head(self) -> int:
        return self.b.heads.head

    async def status(self) -> schemas.StatusResponse:
        store, timeout = self.b.store, self.b.config.worker_timeout

        def gather() -> schemas.StatusResponse:
            counts = store.job_counts()
            workers = store.workers()
            now = utc_now()
            online = sum(1 for w in workers if w.is_online(now, timeout))
            return schemas.StatusResponse(
                queued=counts.get("queued", 0),
                running=counts.get("running", 0),
                completed=counts.get("completed", 0),
                failed=counts.get("failed", 0),
                cancelled=counts.get("cancelled", 0),
                timed_out=counts.get("timed_out", 0),
                workers_online=online,
                workers_total=len(workers),
                head=store.head(),
            )

        return await self.b.read(gather)

    async def workers(self) -> list[schemas.WorkerOut]:
        found = await self.b.read(self.b.store.workers)
        now, timeout = utc_now(), self.b.config.worker_timeout
        return [worker_out(w, now, timeout) for w in found]

    async def jobs(self, statuses: list[str] | None, limit: int) -> list[schemas.Job]:
        found = await self.b.read(self.b.store.jobs, statuses, limit)
        return [job_out(j) for j in found]

    async def job(self, job_id: int) -> schemas.Job:
        return job_out(await self.b.read(self.b.jobs.get, job_id))

    async def run(self, run_id: str) -> schemas.Run:
        return run_out(await self.b.read(find_run, self.b.store, run_id))

    async def runs_index(self) -> RunsIndex:
        # One refresh at a time: concurrent page loads share it instead of racing.
        async with self._index_lock:
            await self.b.read(_refresh_index, self.b.store, self._index)
        return self._index

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
            finished = await self.b.read(self.b.store.read, after, 500, None, ["run.finished"])
            after = finished[-1].position if len(finished) == 500 else head
            for rec in finished:
                run_id = rec.event.run_id  # type: ignore[attr-defined]
                for kind, name in FILES.items():
                    source = files.run_file(self.runs_dir, run_id, name)
                    cache = column_cache.cache_path(self.runs_dir, run_id, kind)
                    try:
                        await self.b.read(column_cache.build, cache, source)
                    except Exception:  # one unreadable run must not stop the others
                        log.exception("could not cache the columns of %s", source)

    async def artifacts(self, run_id: str) -> list[schemas.ArtifactOut]:
        return await self.b.read(files.list_artifacts, self.runs_dir, run_id)

    async def artifact(self, request: Request, run_id: str, path: str) -> HTTPResponse:
        fh = await self.b.read(files.open_artifact, self.runs_dir, run_id, path)
        return await send_file(request, self.b, fh, path.rsplit("/", 1)[-1])

    async def log(self, run: schemas.Run, offset: int | None) -> tuple[bytes, int]:
        log_file = files.run_file(self.runs_dir, run.id, "output.log")

        def read() -> tuple[bytes, int]:
            start = offset
            if start is None:
                try:
                    start = max(0, log_file.stat().st_size - LOG_TAIL)
                except (FileNotFoundError, UnsafePath):
                    return b"", 0
            data = read_from(log_file, start, 4 * LOG_TAIL)
            return data, start + len(data)

        return await self.b.read(read)

    async def cancel(self, job_id: int) -> str:
        previous, _ = await self.b.write_and_wake(self.b.jobs.cancel, job_id)
        if previous == "queued":
            return f"Cancelled job #{job_id}"
        return f"Asked the worker to stop job #{job_id}"

    async def retry(self, job_id: int) -> int:
        job = await self.b.write_and_wake(self.b.jobs.retry, job_id)
        return job.id

    async def changes(self, after: int, timeout: float) -> list[Change]:
        if not await self.b.heads.wait_beyond(after, timeout):
            return []
        recorded = await self.b.read(self.b.store.read, after, 500)
        return [Change(r.position, _tag(r.event), r.stream) for r in recorded]


def _tag(event: object) -> str:
    from whirr.events import tag_of

    return tag_of(event)  # type: ignore[arg-type]


def _refresh_index(store: EventStore, index: RunsIndex) -> None:
    """Bring ``index`` up to the store's head, re-reading only runs that changed."""
    head = store.head()
    if index.head == head and index.loaded:
        return
    if not index.loaded:
        index.load([run_out(r) for r in store.runs(None, None, None)], head)
        return
    events = store.read(after=index.head, limit=2001, types=RUN_EVENT_TYPES)
    if len(events) > 2000:  # a flood (a sweep finishing): reading everything is cheaper
        index.load([run_out(r) for r in store.runs(None, None, None)], head)
        return
    changed: dict[str, RunView | None] = {}
    for rec in events:
        run_id = getattr(rec.event, "run_id", None)
        if isinstance(run_id, str) and run_id not in changed:
            changed[run_id] = store.run(run_id)
    index.update(
        [run_out(r) for r in changed.values() if r is not None],
        max(head, events[-1].position if events else head),
    )
