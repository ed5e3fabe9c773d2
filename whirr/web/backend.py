"""The bridge from the async edge (sanic handlers) to the synchronous core.

Stores and services block, so handlers never call them on the event loop: writes go to a
small writer pool (one thread for SQLite, whose writers serialise anyway: one thread means
no busy-waiting on the file lock inside this process), reads to a reader pool. One thread,
``HeadWatcher``, blocks on ``store.wait`` and wakes every long-polling claim, log follower
and event stream at once, so a thousand idle waiters cost one thread, not a thousand.
"""

from __future__ import annotations

import asyncio
import functools
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

from whirr.facade.local import StoreSettings, StoreWhirr
from whirr.projections import JobView
from whirr.services.jobs import DEFAULT_RETRY_DELAY, Jobs
from whirr.services.workers import Workers
from whirr.store import EventStore, open_store
from whirr.web.config import ServerConfig

T = TypeVar("T")


class HeadWatcher:
    """Tracks the log's head on the event loop; ``wait_beyond`` awaits a newer event."""

    def __init__(self, store: EventStore, loop: asyncio.AbstractEventLoop) -> None:
        self._store = store
        self._loop = loop
        self.head = store.head()
        self._changed = asyncio.Event()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._watch, name="whirr-head", daemon=True)
        self._thread.start()

    def _watch(self) -> None:
        seen = self.head
        while not self._stop.is_set():
            try:
                # A bounded wait, so close() is noticed and a missed wake-up costs <= 1 s.
                if self._store.wait(seen, 1.0):
                    seen = self._store.head()
                    self._loop.call_soon_threadsafe(self.publish, seen)
            except Exception:  # a store hiccup must not kill the wake-ups for good
                time.sleep(0.5)

    def publish(self, head: int) -> None:
        """Record a newer head and wake its waiters (event loop thread only)."""
        if head > self.head:
            self.head = head
            changed, self._changed = self._changed, asyncio.Event()
            changed.set()

    def poke(self, head: int) -> None:
        """``publish`` from any thread (a writer that knows the head it just made)."""
        self._loop.call_soon_threadsafe(self.publish, head)

    async def wait_beyond(self, position: int, timeout: float) -> bool:
        """True once the head passed ``position``; False when ``timeout`` ran out."""
        deadline = self._loop.time() + timeout
        while self.head <= position:
            remaining = deadline - self._loop.time()
            if remaining <= 0:
                return False
            try:
                await asyncio.wait_for(self._changed.wait(), remaining)
            except TimeoutError:
                return self.head > position
        return True

    def close(self) -> None:
        """Stop the watcher thread."""
        self._stop.set()
        self._thread.join(timeout=3)


class Backend:
    """The store, the services and the thread pools one server uses."""

    def __init__(self, config: ServerConfig, loop: asyncio.AbstractEventLoop) -> None:
        self.config = config
        config.runs_dir.mkdir(parents=True, exist_ok=True)
        self.store: EventStore = open_store(config.store_url)
        if config.database_url:  # a PostgreSQL log keeps its archive in the data dir
            self.store.archive_anchor = str(config.data_path.resolve() / "whirr.db")  # type: ignore[attr-defined]
        self.jobs = Jobs(self.store)
        self.workers = Workers(self.store)
        #: The same facade a local project's commands use, over the server's store.
        self.whirr = StoreWhirr(
            self.store,
            StoreSettings(
                runs_dir=config.runs_dir,
                worker_timeout=config.worker_timeout,
                forget_workers_after=config.forget_workers_after,
                check_commands=False,  # the command runs on a worker's machine
                max_attempts=config.max_attempts,
                retry_delay=DEFAULT_RETRY_DELAY,
                own_run_files=config.project,
            ),
            label=f"server {config.data_dir}",
            owns_store=False,
        )
        self._writer = ThreadPoolExecutor(config.writers, thread_name_prefix="whirr-writer")
        self._reader = ThreadPoolExecutor(config.reader_threads, thread_name_prefix="whirr-read")
        self.heads = HeadWatcher(self.store, loop)
        #: worker id -> monotonic time its idle liveness was last recorded.
        self.seen_at: dict[str, float] = {}

    async def write(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """Run a store-writing call on the writer pool and wake waiters on what it wrote."""
        loop = asyncio.get_running_loop()
        result = await loop.run_in_executor(self._writer, functools.partial(fn, *args, **kwargs))
        return result

    async def write_and_wake(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """``write``, then publish the new head at once (a submit must reach an idle
        long-polling worker without waiting for the watcher thread's next turn)."""

        def call() -> tuple[T, int]:
            value = fn(*args, **kwargs)
            # A job's view carries the position of its last event: a head this write made
            # (perhaps not the newest, which the watcher publishes when it sees it), known
            # without asking the store.
            if isinstance(value, JobView):
                return value, value.version
            return value, self.store.head()

        loop = asyncio.get_running_loop()
        value, head = await loop.run_in_executor(self._writer, call)
        self.heads.publish(head)
        return value

    async def read(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """Run a blocking read on the reader pool."""
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._reader, functools.partial(fn, *args, **kwargs))

    def close(self) -> None:
        """Stop the threads and close the store."""
        self.heads.close()
        self._writer.shutdown(wait=True)
        self._reader.shutdown(wait=True)
        self.store.close()
