"""The dashboard's data from a whirr server over HTTP (``whirr dashboard --server URL``).

``WhirrClient`` blocks, so every call runs on a small thread pool. The server's event
stream is not followed directly: the source polls ``/status`` for the log's head (one tiny
request a second) and reads the events past it without following, which survives server
restarts with no reconnect logic of its own.
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

from sanic import HTTPResponse, Request

from whirr.api.dashboard.runs_index import RunsIndex
from whirr.api.dashboard.series import Columns
from whirr.api.dashboard.source import LOG_TAIL, Change, Source
from whirr.client import WhirrClient
from whirr.wire import schemas

T = TypeVar("T")
#: How many runs the table holds from a server (the API's largest page).
MAX_RUNS = 10_000
#: Seconds between looks at the server's head while a page waits for changes.
POLL = 1.0


class RemoteSource(Source):
    """A whirr server, read (and asked to cancel or retry) through its HTTP API."""

    kind = "remote"

    def __init__(self, client: WhirrClient) -> None:
        super().__init__()
        self.client = client
        self.label = client.url.removesuffix("/api/v1")
        self._pool = ThreadPoolExecutor(8, thread_name_prefix="whirr-remote")
        self._index = RunsIndex()
        self._index_lock = asyncio.Lock()

    async def _call(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._pool, functools.partial(fn, *args, **kwargs))

    async def head(self) -> int:
        return (await self.status()).head

    async def status(self) -> schemas.StatusResponse:
        return await self._call(self.client.status)

    async def workers(self) -> list[schemas.WorkerOut]:
        return await self._call(self.client.list_workers)

    async def jobs(self, statuses: list[str] | None, limit: int) -> list[schemas.Job]:
        if statuses is None or len(statuses) != 1:
            wanted = None if statuses is None else set(statuses)
            found = await self._call(self.client.list_jobs, None, limit)
            return [j for j in found if wanted is None or j.status in wanted]
        return await self._call(self.client.list_jobs, statuses[0], limit)

    async def job(self, job_id: int) -> schemas.Job:
        return await self._call(self.client.get_job, job_id)

    async def run(self, run_id: str) -> schemas.Run:
        return await self._call(self.client.get_run, run_id)

    async def runs_index(self) -> RunsIndex:
        async with self._index_lock:
            head = await self.head()
            if not self._index.loaded or head != self._index.head:
                runs = await self._call(self.client.runs, None, None, MAX_RUNS)
                self._index.load(runs, head)
        return self._index

    async def columns(self, run_id: str, kind: str) -> Columns:
        columns = self.series.get(run_id, kind)
        if kind == "system":
            # Samples have no _idx: the API's cursor is a line number, kept in ``offset``.
            since = columns.offset
            answer = await self._call(self.client.system_samples, run_id, since)
            with columns.lock:
                if columns.offset == since:  # else another request added these meanwhile
                    columns.extend(answer.samples)
                    columns.offset = answer.next
            return columns
        rows = await self._call(self.client.metrics, run_id, columns.rows)
        with columns.lock:
            # Another request may have added these rows meanwhile: keep only new ones.
            fresh = [
                r for r in rows if not isinstance(r.get("_idx"), int) or r["_idx"] >= columns.rows
            ]
            columns.extend(fresh)
        return columns

    async def artifacts(self, run_id: str) -> list[schemas.ArtifactOut]:
        return await self._call(self.client.artifacts, run_id)

    async def artifact(self, request: Request, run_id: str, path: str) -> HTTPResponse:
        data = await self._call(self.client.read_artifact, run_id, path)
        name = path.rsplit("/", 1)[-1].replace('"', "")
        return HTTPResponse(
            data,
            content_type="application/octet-stream",
            headers={"Content-Disposition": f'attachment; filename="{name}"'},
        )

    async def log(self, run: schemas.Run, offset: int | None) -> tuple[bytes, int]:
        if run.job_id is None:
            return b"", 0  # the API serves logs of jobs only
        data = await self._call(self.client.logs, run.job_id, offset or 0)
        end = (offset or 0) + len(data)
        if offset is None and len(data) > LOG_TAIL:
            data = data[-LOG_TAIL:]
        return data, end

    async def cancel(self, job_id: int) -> str:
        answer = await self._call(self.client.cancel, job_id)
        return answer.message

    async def retry(self, job_id: int) -> int:
        answer = await self._call(self.client.retry, job_id)
        return answer.job_id

    async def changes(self, after: int, timeout: float) -> list[Change]:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while await self.head() <= after:
            if loop.time() + POLL > deadline:
                return []
            await asyncio.sleep(POLL)

        def read() -> list[Change]:
            out = []
            for event in self.client.events(after, follow=False):
                out.append(Change(event.position, event.type, event.stream))
                if len(out) >= 500:
                    break
            return out

        return await self._call(read)

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)
        self.client.close()
