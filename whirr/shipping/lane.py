"""``ArtifactLane``: the thread that uploads finished artifacts, beside the shipper's.

A 1 GB checkpoint takes seconds to upload even over loopback; done on the shipper's own
thread it would hold up every run's ``metrics.jsonl``/``output.log`` for that long (issue
16 asks for a logged row on the head node within about a second). So the shipper hands
each finished artifact to this lane: one upload at a time, over a connection of its own,
while the shipper goes on sending streams. The lane never touches a ledger: it hands
each outcome back (``take``), and the shipper's thread records it, so the ledgers have
one writer. An artifact counts as shipped only once the server stored it, as before.
"""

from __future__ import annotations

import contextlib
import threading
from collections import deque
from collections.abc import Callable
from pathlib import Path
from typing import Any, NamedTuple

from whirr.shipping.ledger import Stamp


class Upload(NamedTuple):
    """One artifact to upload: ``owner`` is whatever the shipper tracks the run by."""

    owner: object
    run_id: str
    attempt: int
    source: Path
    path: str
    stamp: Stamp


class Outcome(NamedTuple):
    """How an upload went: ``error`` None when the server stored the artifact."""

    upload: Upload
    error: Exception | None


class ArtifactLane:
    """Uploads artifacts one at a time on a thread of its own (see the module doc).

    ``upload(client, upload)`` does one upload; ``open_client`` makes the lane's client
    (on its thread); ``wake`` is called after each outcome so the shipper records it."""

    def __init__(
        self,
        open_client: Callable[[], Any],
        upload: Callable[[Any, Upload], object],
        wake: Callable[[], None],
    ) -> None:
        self._open_client = open_client
        self._upload = upload
        self._wake = wake
        self._lock = threading.Lock()
        self._more = threading.Condition(self._lock)
        self._queue: deque[Upload] = deque()
        #: (owner, path) of every upload queued or under way (owners hash by identity).
        self._busy: set[tuple[object, str]] = set()
        self._outcomes: list[Outcome] = []
        self._closed = False
        self._thread: threading.Thread | None = None
        self._client: Any = None

    def start(self) -> bool:
        """Start the thread; False when none can start (the interpreter is shutting
        down): ``submit`` then uploads on the caller's thread."""
        with self._lock:
            if self._thread is not None:
                return True
            thread = threading.Thread(target=self._work, name="whirr-ship-artifacts", daemon=True)
            try:
                thread.start()
            except RuntimeError:
                return False
            self._thread = thread
            return True

    def submit(self, upload: Upload, inline_client: Any) -> None:
        """Queue ``upload`` unless the same artifact of the same run is queued or under
        way already. Without a thread it is done here, with ``inline_client``."""
        key = (upload.owner, upload.path)
        with self._lock:
            if key in self._busy or self._closed:
                return
            self._busy.add(key)
            if self._thread is not None:
                self._queue.append(upload)
                self._more.notify()
                return
        self._finish(upload, self._run(inline_client, upload))

    def busy(self, owner: object) -> bool:
        """True while an upload of ``owner`` is queued or under way, or its outcome is
        not taken yet."""
        with self._lock:
            return any(o is owner for o, _ in self._busy) or any(
                out.upload.owner is owner for out in self._outcomes
            )

    def take(self, owner: object) -> list[Outcome]:
        """The outcomes of ``owner``'s uploads since the last call."""
        with self._lock:
            mine = [out for out in self._outcomes if out.upload.owner is owner]
            self._outcomes = [out for out in self._outcomes if out.upload.owner is not owner]
        return mine

    def forget(self, owner: object) -> None:
        """Drop ``owner``'s queued uploads and outcomes (the run is not shipped any more);
        one under way finishes, and its outcome is dropped too."""
        with self._lock:
            self._queue = deque(u for u in self._queue if u.owner is not owner)
            self._busy = {key for key in self._busy if key[0] is not owner}
            self._outcomes = [out for out in self._outcomes if out.upload.owner is not owner]

    def close(self, timeout: float = 0.0) -> None:
        """Stop taking uploads; wait up to ``timeout`` for the one under way."""
        with self._lock:
            self._closed = True
            self._queue.clear()
            self._more.notify_all()
            thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout)

    # -- the thread ---------------------------------------------------------------------
    def _work(self) -> None:
        try:
            while True:
                with self._lock:
                    while not self._queue and not self._closed:
                        self._more.wait()
                    if self._closed:
                        return
                    upload = self._queue.popleft()
                error = self._run(None, upload)
                self._finish(upload, error)
        finally:
            if self._client is not None:
                with contextlib.suppress(Exception):
                    self._client.close()

    def _run(self, client: Any, upload: Upload) -> Exception | None:
        try:
            if client is None:
                if self._client is None:
                    self._client = self._open_client()
                client = self._client
            self._upload(client, upload)
        except Exception as exc:  # handed to the shipper's thread, which decides
            return exc
        return None

    def _finish(self, upload: Upload, error: Exception | None) -> None:
        key = (upload.owner, upload.path)
        with self._lock:
            if key in self._busy:  # not forgotten meanwhile
                self._busy.discard(key)
                self._outcomes.append(Outcome(upload, error))
        self._wake()
