"""The dashboard over a ``Whirr`` it has no store of (``whirr dashboard --server URL``:
an ``HttpWhirr``): a thin async adapter.

The facade blocks, so every call runs on a small thread pool. The server's event stream
is not followed directly: the source polls ``status`` for the log's head (one tiny request
a second while a page waits) and reads the events past it without following, which
survives server restarts with no reconnect logic of its own. Metric columns are paged
through the facade (``metrics``, ``system``), only the rows not held yet.
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

from whirr.dashboard.series import Columns
from whirr.dashboard.source import Source
from whirr.facade import Whirr

T = TypeVar("T")
#: Seconds between looks at the head while a page waits for changes.
POLL = 1.0
#: Metric rows one request asks for.
METRICS_PAGE = 100_000


class RemoteSource(Source):
    """Any ``Whirr``, read (and asked to cancel or retry) on a thread pool of its own."""

    kind = "remote"

    def __init__(self, whirr: Whirr) -> None:
        super().__init__(whirr)
        self.label = whirr.label
        self._pool = ThreadPoolExecutor(8, thread_name_prefix="whirr-remote")

    async def call(self, fn: Callable[..., T], *args: Any) -> T:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._pool, functools.partial(fn, *args))

    async def head(self) -> int:
        return (await self.status()).head

    async def wait_beyond(self, after: int, timeout: float) -> bool:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while await self.head() <= after:
            if loop.time() + POLL > deadline:
                return False
            await asyncio.sleep(POLL)
        return True

    async def columns(self, run_id: str, kind: str) -> Columns:
        columns = self.series.get(run_id, kind)
        if kind == "system":
            # Samples have no _idx: the API's cursor is a line number, kept in ``offset``.
            since = columns.offset
            answer = await self.call(self.whirr.system, run_id, since)
            with columns.lock:
                if columns.offset == since:  # else another request added these meanwhile
                    columns.extend(answer.samples)
                    columns.offset = answer.next
            return columns
        while True:
            since = columns.rows
            rows = await self.call(self.whirr.metrics, run_id, since, METRICS_PAGE)
            with columns.lock:
                # Another request may have added these rows meanwhile: keep only new ones.
                fresh = [
                    r
                    for r in rows
                    if not isinstance(r.get("_idx"), int) or r["_idx"] >= columns.rows
                ]
                columns.extend(fresh)
            last = rows[-1].get("_idx") if rows else None
            if len(rows) < METRICS_PAGE or not isinstance(last, int) or not fresh:
                return columns  # the end (or rows without _idx, which cannot be paged)

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)
