"""Recording a run's lifecycle on a whirr server: for scripts a remote worker runs, and
for direct runs when a server is named (``WHIRR_SERVER_URL``, ``whirr.init(server=)``).

A remote worker's job has no project database; it has ``WHIRR_SERVER_URL`` and
``WHIRR_TOKEN`` (handed over by the worker), so the attach, summaries and artifacts go to
the server's ``/runs/{id}/...`` routes, which append the same events the local library
appends. A direct run has no worker: it records its own start (``POST /runs``) and end
(``POST /runs/{id}/finish``), and ships its own files (``whirr.shipping.Shipper``, on a
thread of its own, attempt 0, state in memory): what ``run.log()`` appended, the whole
files, the artifacts. ``run.log()`` itself stays a local write; the shipper reads the
files behind it.

It must cost the training loop nothing, network or not: calls only queue the event, one
background thread sends them in order (the HTTP client, httpx, is imported there, on the
first send, so ``import whirr`` stays light). Each request has a short timeout and a few
retries; a failure is reported once on stderr and the run goes on with its files. The
queue is flushed when the run ends, for a bounded time, so a summary set just before the
script exits is recorded before the worker reports the job's end. A direct run's files
are flushed first, then its end is sent, so a run seen finished has its files.
"""

from __future__ import annotations

import contextlib
import os
import socket
import sys
import threading
import time
from collections import deque
from collections.abc import Callable
from typing import Any

#: Seconds one request may take (the server appends one event: milliseconds).
REQUEST_TIMEOUT_S = 5.0
#: Tries per event when the server is unreachable or failing (5xx).
TRIES = 3
#: A script may attach before its worker's ``started`` report lands: retry a 404 this long.
ATTACH_PATIENCE_S = 10.0
#: Longest the end of a run waits for queued events to be sent (in a SIGTERM handler: less,
#: the worker kills the job after its grace period).
FLUSH_S = 10.0
FLUSH_IN_SIGNAL_S = 2.0
_PAUSE_S = 0.25


class RemoteRecorder:
    """``Recorder``'s interface over the HTTP API; never raises, never blocks the caller
    (except ``close``, bounded)."""

    def __init__(
        self,
        url: str,
        token: str | None,
        *,
        direct: bool = False,
        resumed: bool = False,
        files: str | None = None,
    ) -> None:
        self._url = url
        self._token = token
        self._direct = direct
        self._resumed = resumed
        #: The worker ships this job's files (``WHIRR_FILES=shipped``): the server records
        #: each artifact once it is uploaded, so we record none it cannot see.
        self._shipped = files == "shipped"
        self._shipper: Any = None
        self._shipped_run = ""
        self._finish: tuple[str, str, Callable[[Any], object]] | None = None
        self._client: Any = None
        self._lock = threading.RLock()  # reentrant: close() may run in a signal handler
        self._ready = threading.Condition(self._lock)
        self._queue: deque[tuple[str, str, Callable[[Any], object]]] = deque()
        self._sending = False
        self._closed = False
        self._thread: threading.Thread | None = None
        self._warned = False
        self._down = False
        self._pid = os.getpid()

    # -- Recorder's interface -------------------------------------------------------------
    def view(self, run_id: str) -> None:
        """Nothing is read back from the server (``init()`` must not wait on it)."""
        return None

    def job(self, job_id: int) -> None:
        """As ``view``: the worker's ``config.json`` and ``meta.json`` hold the job's."""
        return None

    def start(self, run_id: str, run_dir: str, **fields: Any) -> None:
        """Queue the attach (the server knows a job's run's directory and job), or a
        direct run's start."""
        fields.pop("job_id", None)
        fields.setdefault("hostname", socket.gethostname())
        if not self._direct:
            self._put("attach", run_id, lambda c: c.attach_run(run_id, **fields))
            return
        resume = self._resumed

        def start(client: Any) -> object:
            from whirr.wire.run_events import RunStartRequest

            fields["tags"] = list(fields.get("tags") or [])
            # Its files are shipped (below): said now, so the server shows the run's
            # files as on their way before the first upload lands.
            req = RunStartRequest(
                run_id=run_id, run_dir=run_dir, resume=resume, files="shipped", **fields
            )
            return client.start_run(req)

        self._put("start", run_id, start)
        self._ship(run_id, run_dir)

    def _ship(self, run_id: str, run_dir: str) -> None:
        """Ship a direct run's files from a thread of its own (the server takes them
        once the start above is recorded: the shipper retries until then)."""
        from pathlib import Path

        from whirr.shipping.shipper import Shipper

        url, token = self._url, self._token or ""

        def open_client() -> Any:
            from whirr.client import WhirrClient

            return WhirrClient(url, token=token, timeout=REQUEST_TIMEOUT_S)

        def say(message: str) -> None:
            self._warn(message)

        self._shipped_run = run_id
        self._shipper = Shipper(open_client, say=say)
        self._shipper.add(run_id, Path(run_dir), 0, {}, sync=self._resumed)
        self._shipper.start()

    def summary(self, run_id: str, values: dict[str, Any]) -> None:
        """Queue a summary update."""
        self._put("summary", run_id, lambda c: c.update_summary(run_id, values))

    def artifact(self, run_id: str, path: str, size: int) -> None:
        """Queue an artifact record (the file is already on the shared data dir). A
        direct run's artifacts, and those of a job whose worker ships its files, are
        recorded by the server once the shipper uploaded them."""
        if self._direct or self._shipped:
            return
        self._put("artifact", run_id, lambda c: c.record_artifact(run_id, path, size))

    def config(self, run_id: str, values: dict[str, Any]) -> None:
        """Queue config values set after the start."""
        self._put("config", run_id, lambda c: c.update_run_config(run_id, values))

    def tags(self, run_id: str, add: list[str], remove: list[str]) -> None:
        """Queue tags added or removed."""
        self._put("tags", run_id, lambda c: c.tag_run(run_id, add=add, remove=remove))

    def note(self, run_id: str, text: str, append: bool) -> None:
        """Queue the run's note."""
        self._put("note", run_id, lambda c: c.note_run(run_id, text, append=append))

    def finish(
        self, run_id: str, status: str, error: str | None, exit_code: int | None = None
    ) -> None:
        """A direct run's end, sent by ``close`` once its files are shipped (a job's true
        end is its remote worker's to record)."""
        if self._direct:
            self._finish = (
                "finish",
                run_id,
                lambda c: c.finish_run(run_id, status, error, exit_code=exit_code),
            )

    def close(self, *, in_signal: bool = False) -> None:
        """Ship a direct run's files and send what is queued (each for a bounded time),
        then stop the sender and the shipper."""
        wait = FLUSH_IN_SIGNAL_S if in_signal else FLUSH_S
        shipper, self._shipper = self._shipper, None
        if shipper is not None and os.getpid() == self._pid:
            shipper.end(self._shipped_run, flush_s=wait).wait(wait)
            shipper.close()
        finish, self._finish = self._finish, None
        if finish is not None:
            self._put(*finish)
        with self._lock:
            self._closed = True
            self._ready.notify_all()
            deadline = time.monotonic() + wait
            while (self._queue or self._sending) and self._alive():
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    break
                self._ready.wait(remaining)
            dropped = len(self._queue)
            self._queue.clear()
        if dropped:
            self._warn(f"{dropped} run event(s) not sent in time")

    # -- the sender ---------------------------------------------------------------------
    def _alive(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def _put(self, what: str, run_id: str, send: Callable[[Any], object]) -> None:
        with self._lock:
            if self._closed:
                return
            if os.getpid() != self._pid:  # a forked child: its parent sends its own events
                self._pid = os.getpid()
                self._queue.clear()
            self._queue.append((what, run_id, send))
            if not self._alive():  # first event, or a forked child (threads do not fork)
                self._sending = False
                self._thread = threading.Thread(target=self._work, name="whirr-remote", daemon=True)
                self._thread.start()
            self._ready.notify_all()

    def _work(self) -> None:
        while True:
            with self._lock:
                while not self._queue and not self._closed:
                    self._ready.wait()
                if not self._queue:
                    break
                what, run_id, send = self._queue.popleft()
                self._sending = True
            try:
                self._deliver(what, run_id, send)
            finally:
                with self._lock:
                    self._sending = False
                    self._ready.notify_all()
        if self._client is not None:
            with contextlib.suppress(Exception):
                self._client.close()

    def _deliver(self, what: str, run_id: str, send: Callable[[Any], object]) -> None:
        try:
            from whirr.client import ServerError, ServerUnreachable, WhirrClient
            from whirr.services.errors import NotFound

            if self._client is None:
                self._client = WhirrClient(
                    self._url, token=self._token or "", timeout=REQUEST_TIMEOUT_S
                )
        except Exception as exc:  # a broken install must not stop the run either
            self._warn(f"cannot reach the server: {exc}")
            return
        tries = 0
        started = time.monotonic()
        while True:
            tries += 1
            try:
                send(self._client)
                self._down = False
                return
            except NotFound as exc:
                # The worker reports the run's start just after spawning us: wait for it.
                waited = time.monotonic() - started
                if what != "attach" or waited >= ATTACH_PATIENCE_S:
                    self._warn(f"{what} of run {run_id}: {exc}")
                    return
            except (ServerUnreachable, ServerError) as exc:
                # Once the server failed an event, later ones try once each: a server
                # that is down must not hold the end of the run for long.
                if tries >= (1 if self._down else TRIES):
                    self._down = True
                    self._warn(f"{what} of run {run_id}: {exc}")
                    return
            except Exception as exc:  # 401/403/409/422: retrying will not help
                self._warn(f"{what} of run {run_id}: {exc}")
                return
            time.sleep(_PAUSE_S * tries)

    def _warn(self, message: str) -> None:
        if not self._warned:
            self._warned = True
            print(
                f"whirr: could not record the run on the server {self._url} ({message}); "
                "the run's files are still written",
                file=sys.stderr,
                flush=True,
            )
