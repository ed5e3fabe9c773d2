"""``Shipper``: one background thread that sends runs' files to a server.

Every ``INTERVAL`` seconds, or at once when woken, it looks at each run it ships: new
whole lines of ``metrics.jsonl``/``system.jsonl`` and new bytes of ``output.log`` go up by
attempt-local offset (``<= CHUNK`` bytes a request, several requests when more), whole
files that changed are replaced, finished artifacts are handed to the artifact lane
(``whirr.shipping.lane``: a thread of its own, so a 1 GB checkpoint never holds up the
streams while it uploads). Each acknowledgement is
written to the run's ledger (``whirr.shipping.ledger``) when the shipper keeps ledgers (a
worker; a direct run keeps its state in memory).

The server is the judge of offsets: an upload from an offset it already passed is a retry
(it appends only the rest), one past its end answers ``offset_gap`` with its size, and we
resume from there. So a ledger one acknowledgement behind (a worker killed between the
answer and the write) costs one repeated request, never a gap or a duplicate.

A run's life here: ``add`` (the attempt runs) -> ``end`` (its process ended: send
everything, then the final sizes; ``end`` returns an event set when that is done, or when
the flush gave up for now) -> ``release`` (the worker reported the end and wrote the
final ``meta.json``: send the whole files once more, then forget the run and its ledger).
A server that cannot be reached is retried with a growing pause; nothing is dropped.
A server that answers ``stale_attempt`` has a newer attempt of the job: this attempt's
files are not wanted any more, which the shipper says once before forgetting the run.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol

from whirr.services.errors import InvalidRequest, LeaseLost, NotFound, OffsetGap, WhirrError
from whirr.shipping import ledger as ledgers
from whirr.shipping import scan
from whirr.shipping.lane import ArtifactLane, Upload
from whirr.shipping.ledger import LINE_STREAMS, STREAMS, Ledger

#: Seconds between two looks at the runs' files.
INTERVAL = 0.25
#: Longest pause between tries while the server cannot be reached.
MAX_BACKOFF = 10.0
#: Chunks one stream may send in one pass (the other runs get their turn in between).
CHUNKS_PER_PASS = 8
#: How long ``end`` flushes before the caller goes on (the shipper keeps trying after).
FLUSH_S = 60.0
#: A run the server does not know (yet: a direct run's start is on its way) is asked for
#: again after this long, and reported once it stays unknown for the patience.
NOT_FOUND_RETRY_S = 0.2
NOT_FOUND_PATIENCE_S = 10.0


class FilesClient(Protocol):
    """The calls the shipper makes (``whirr.client.WhirrClient`` has them)."""

    def run_files(self, run_id: str) -> Any: ...

    def upload_run_file(
        self, run_id: str, name: str, attempt: int, offset: int, data: bytes
    ) -> int: ...

    def final_run_files(self, run_id: str, attempt: int, sizes: dict[str, int]) -> object: ...


class _Run:
    """One run being shipped (its ledger plus what only this process knows)."""

    def __init__(self, ledger: Ledger, *, synced: bool = True) -> None:
        self.ledger = ledger
        #: False until the server told the attempt's sizes (a resumed ledger may be one
        #: acknowledgement behind, a resumed direct run has none): we go on from there.
        self.synced = synced
        self.run_dir = Path(ledger.run_dir)
        #: Set when the ended attempt's files and final sizes are on the server (or the
        #: flush gave up for now, or shipping stopped).
        self.flushed = threading.Event()
        self.flush_deadline: float | None = None
        #: The worker is done with the run: ship the whole files once more, then forget it.
        self.released = False
        self.retry_at = 0.0  # a run the server does not know yet (a direct run's start)
        self.missing_since: float | None = None
        self.warned: set[str] = set()


class Shipper:
    """Ships the files of the runs it is given, from one daemon thread.

    ``open_client`` is called on the shipper's thread (so a direct run imports httpx
    there, not on its own); ``open_artifact_client`` (default: ``open_client``) makes the
    artifact lane's own client. ``ledger_dir`` keeps one ledger per run (None: in memory).
    ``on_flushed(run_id)`` is called from the thread when an ended run's flush is done:
    the worker's loop uses it to wake up and report the job's end."""

    def __init__(
        self,
        open_client: Callable[[], FilesClient],
        *,
        ledger_dir: Path | None = None,
        say: Callable[[str], None] = lambda message: None,
        on_flushed: Callable[[str], None] = lambda run_id: None,
        interval: float = INTERVAL,
        open_artifact_client: Callable[[], FilesClient] | None = None,
    ) -> None:
        self._open_client = open_client
        self._ledger_dir = ledger_dir
        self._say = say
        #: Called (from the thread) with a run id once an ended run's flush is done.
        self.on_flushed = on_flushed
        self._interval = interval
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._runs: dict[str, _Run] = {}
        self._closed = False
        self._thread: threading.Thread | None = None
        self._client: Any = None
        self._down_since: float | None = None
        self._backoff = 0.0
        self._retry_at = 0.0
        self._down: tuple[type[Exception], ...] = ()
        self._lane = ArtifactLane(open_artifact_client or open_client, _upload_artifact, self.wake)

    # -- what the owner calls (any thread) ------------------------------------------------
    def start(self) -> None:
        """Start the thread (idempotent)."""
        with self._lock:
            if self._thread is None:
                self._thread = threading.Thread(target=self._work, name="whirr-ship", daemon=True)
                self._thread.start()
        # Started here, not when the first artifact shows up: that may be in an exit
        # hook, when no thread can start any more (the lane then uploads inline).
        self._lane.start()

    def add(
        self,
        run_id: str,
        run_dir: Path,
        attempt: int,
        local_start: dict[str, int],
        *,
        sync: bool = False,
    ) -> None:
        """Ship ``run_id``'s attempt from now on; ``local_start`` maps each stream to the
        local byte where this attempt begins (what is before it is not shipped). With
        ``sync`` the server's sizes of the attempt are asked first (a continued run)."""
        book = Ledger(run_id=run_id, attempt=attempt, run_dir=str(run_dir))
        for name in STREAMS:
            book.stream(name).local_start = local_start.get(name, 0)
        with self._lock:
            self._runs[run_id] = _Run(book, synced=not sync)  # replaces an earlier attempt's
        self._save(book)
        self.wake()

    def resume(self) -> list[str]:
        """Take over the ledgers a previous worker on this data dir left (it was killed:
        its jobs are gone too, so each attempt counts as ended). Returns their run ids."""
        if self._ledger_dir is None:
            return []
        taken = []
        for book in ledgers.load_all(self._ledger_dir):
            book.ended = True
            run = _Run(book, synced=False)
            run.released = True
            run.flush_deadline = time.monotonic() + FLUSH_S
            with self._lock:
                if book.run_id in self._runs:
                    continue
                self._runs[book.run_id] = run
            taken.append(book.run_id)
        self.wake()
        return taken

    def end(self, run_id: str, *, flush_s: float = FLUSH_S) -> threading.Event:
        """The run's process ended: send the rest, then its final sizes. The event is set
        once that is done, or after ``flush_s`` (the shipper keeps trying meanwhile)."""
        with self._lock:
            run = self._runs.get(run_id)
            if run is None:
                done = threading.Event()
                done.set()
                return done
            run.ledger.ended = True
            run.flush_deadline = time.monotonic() + flush_s
        self._save(run.ledger)
        self.wake()
        return run.flushed

    def release(self, run_id: str) -> None:
        """The owner is done with the run: ship the whole files once more, then forget
        it (and its ledger) once its final sizes are on the server."""
        with self._lock:
            run = self._runs.get(run_id)
            if run is not None:
                run.released = True
        self.wake()

    def shipping(self, run_id: str) -> bool:
        """True while ``run_id`` is still being shipped."""
        with self._lock:
            return run_id in self._runs

    def wake(self) -> None:
        """Look at the files now rather than at the next interval."""
        self._wake.set()

    def close(self, timeout: float = 0.0) -> None:
        """Stop the thread, after at most ``timeout`` seconds of shipping what is left
        (the ledgers keep the rest for the next worker)."""
        deadline = time.monotonic() + timeout
        with self._lock:
            runs = list(self._runs.values())
        for run in runs:
            if run.ledger.ended:
                run.flushed.wait(max(0.0, deadline - time.monotonic()))
        with self._lock:
            self._closed = True
        self.wake()
        self._lane.close(max(0.0, deadline - time.monotonic()))
        thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(max(0.0, deadline - time.monotonic()) + 1.0)

    # -- the thread -----------------------------------------------------------------------
    def _work(self) -> None:
        # Imported here: a direct run's main thread never pays for httpx. The artifact
        # upload too, now: imported by an exit hook's flush, its thread pool could not
        # register itself any more (the interpreter is shutting down).
        import whirr.shipping.artifacts  # noqa: F401
        from whirr.client import ServerError, ServerUnreachable

        #: Errors that mean "try again later": the server is down, far away or failing.
        self._down = (ServerUnreachable, ServerError)
        try:
            while True:
                with self._lock:
                    if self._closed:
                        return
                    runs = list(self._runs.values())
                busy = False
                for run in runs:
                    if time.monotonic() >= max(self._retry_at, run.retry_at):
                        busy = self._pass(run) or busy
                    self._check_deadline(run)
                if busy:
                    continue  # more may be waiting (a chunk limit hit, a flush going on)
                now = time.monotonic()
                pause = max(self._interval, self._retry_at - now)
                deadlines = [r.flush_deadline for r in runs if not r.flushed.is_set()]
                for deadline in deadlines:
                    if deadline is not None:
                        pause = min(pause, max(0.0, deadline - now))
                self._wake.wait(pause)
                self._wake.clear()
        finally:
            if self._client is not None:
                with contextlib.suppress(Exception):
                    self._client.close()

    def _client_now(self) -> Any:
        if self._client is None:
            self._client = self._open_client()
        return self._client

    def _pass(self, run: _Run) -> bool:
        """Ship what is new of ``run``; True when it sent something (look again soon)."""
        book = run.ledger
        try:
            client = self._client_now()
            if not run.synced:
                self._sync(client, run)
            sent = self._ship_streams(client, run)
            sent = self._ship_whole_files(client, run) or sent
            uploading = False
            if not book.final_sent:
                recorded, uploading = self._ship_artifacts(client, run)
                sent = recorded or sent
            if book.ended and not book.final_sent:
                # Final sizes once everything is up, artifacts included.
                if not sent and not uploading:
                    self._send_final(client, run)
                    sent = True
            elif book.ended and run.released and not sent:
                if book.final != self._final_sizes(book):  # meta.json changed since
                    self._send_final(client, run)
                self._forget(run)
        except LeaseLost as exc:
            self._say(
                f"Run {book.run_id} attempt {book.attempt}: the server has a newer attempt "
                f"({exc}); this attempt's files are no longer shipped."
            )
            self._forget(run)
            return False
        except NotFound as exc:
            # A direct run's start may not have reached the server yet: try again soon,
            # and say so only when that lasts.
            now = time.monotonic()
            if run.missing_since is None:
                run.missing_since = now
            if now - run.missing_since >= NOT_FOUND_PATIENCE_S:
                self._warn_once(run, "not found", f"run {book.run_id} not on the server ({exc})")
            run.retry_at = now + NOT_FOUND_RETRY_S
            return False
        except self._down as exc:
            self._server_down(exc)
            return False
        except WhirrError as exc:  # refused (a token without the scope, a bad name)
            self._warn_once(run, "refused", f"run {book.run_id}: {exc}")
            run.retry_at = time.monotonic() + MAX_BACKOFF
            return False
        except Exception as exc:  # a full disk under the ledger, a bug: never kill the thread
            self._warn_once(run, "failed", f"run {book.run_id}: {type(exc).__name__}: {exc}")
            run.retry_at = time.monotonic() + MAX_BACKOFF
            return False
        self._server_up()
        run.missing_since = None
        return sent

    def _sync(self, client: Any, run: _Run) -> None:
        """Go on from the sizes the server has of this attempt."""
        book = run.ledger
        known = client.run_files(book.run_id)
        if known.attempt != book.attempt:
            raise LeaseLost(f"the run is at attempt {known.attempt}")
        for name in STREAMS:
            entry = known.files.get(name)
            if entry is not None:
                book.stream(name).acked = entry.attempt_size
        run.synced = True
        self._save(book)

    def _ship_streams(self, client: Any, run: _Run) -> bool:
        book = run.ledger
        sent = False
        for name in STREAMS:
            state = book.stream(name)
            for _ in range(CHUNKS_PER_PASS):
                data = scan.stream_chunk(
                    run.run_dir, name, state.position, whole_lines=name in LINE_STREAMS
                )
                if not data:
                    break
                try:
                    size = client.upload_run_file(
                        book.run_id, name, book.attempt, state.acked, data
                    )
                except OffsetGap as gap:
                    # The server has less (or more) than we thought: go on from its size.
                    state.acked = gap.size
                    self._save(book)
                    sent = True
                    continue
                state.acked = size
                self._save(book)
                sent = True
        return sent

    def _ship_whole_files(self, client: Any, run: _Run) -> bool:
        book = run.ledger
        sent = False
        for item in scan.changed_files(run.run_dir, book.files):
            try:
                client.upload_run_file(book.run_id, item.name, book.attempt, 0, item.data)
            except InvalidRequest as exc:  # refused for good (too large, say): not again
                self._warn_once(run, item.name, f"run {book.run_id}: {item.name} refused: {exc}")
            book.files[item.name] = item.stamp
            self._save(book)
            sent = True
        return sent

    def _ship_artifacts(self, client: Any, run: _Run) -> tuple[bool, bool]:
        """Record the artifacts the lane uploaded and hand it the new finished ones.
        Returns (something was recorded, uploads of this run are still under way). An
        upload that failed raises its error here, on the shipper's thread, which
        decides as for any request (retry later, a newer attempt, ...)."""
        book = run.ledger
        recorded = False
        failed: Exception | None = None
        for outcome in self._lane.take(run):
            upload, error = outcome
            if isinstance(error, InvalidRequest):  # too large for the server, a refused name
                self._warn_once(run, upload.path, f"run {book.run_id}: artifact refused: {error}")
            elif error is not None:
                failed = failed or error
                continue  # not recorded: handed to the lane again on a later pass
            book.artifacts[upload.path] = upload.stamp
            self._save(book)
            recorded = True
        if failed is not None:
            raise failed
        for found in scan.finished_artifacts(run.run_dir, book.artifacts):
            source = run.run_dir / "artifacts" / found.path
            upload = Upload(run, book.run_id, book.attempt, source, found.path, found.stamp)
            self._lane.submit(upload, client)  # once: a file queued or under way is skipped
        return recorded, self._lane.busy(run)

    @staticmethod
    def _final_sizes(book: Ledger) -> dict[str, int]:
        """What the server should have of the attempt: each stream's shipped bytes and
        each whole file's size as last shipped."""
        sizes = {name: book.stream(name).acked for name in STREAMS}
        sizes.update((name, stamp.size) for name, stamp in book.files.items())
        return sizes

    def _send_final(self, client: Any, run: _Run) -> None:
        book = run.ledger
        sizes = self._final_sizes(book)
        client.final_run_files(book.run_id, book.attempt, sizes)
        book.final_sent = True
        book.final = sizes
        self._save(book)
        self._flushed(run)

    def _check_deadline(self, run: _Run) -> None:
        deadline = run.flush_deadline
        if deadline is not None and not run.flushed.is_set() and time.monotonic() >= deadline:
            self._say(
                f"Run {run.ledger.run_id}: its files are not all on the server yet; "
                "still trying (a restarted worker resumes from its ledger)."
            )
            self._flushed(run)

    def _flushed(self, run: _Run) -> None:
        if not run.flushed.is_set():
            run.flushed.set()
            self.on_flushed(run.ledger.run_id)

    def _forget(self, run: _Run) -> None:
        run_id = run.ledger.run_id
        with self._lock:
            current = self._runs.get(run_id) is run
            if current:
                del self._runs[run_id]
        self._lane.forget(run)
        if current and self._ledger_dir is not None:
            ledgers.delete(self._ledger_dir, run_id)
        self._flushed(run)

    def _save(self, book: Ledger) -> None:
        if self._ledger_dir is None:
            return
        with self._lock:
            current = self._runs.get(book.run_id)
        if current is None or current.ledger is book:  # not a replaced earlier attempt
            ledgers.save(self._ledger_dir, book)

    # -- a server out of reach --------------------------------------------------------------
    def _server_down(self, exc: Exception) -> None:
        now = time.monotonic()
        if self._down_since is None:
            self._down_since = now
            self._say(f"Shipping run files: server unreachable ({exc}); retrying.")
        self._backoff = min(MAX_BACKOFF, max(0.5, self._backoff * 2))
        self._retry_at = now + self._backoff

    def _server_up(self) -> None:
        if self._down_since is not None:
            self._say("Shipping run files: the server answers again; resuming.")
        self._down_since = None
        self._backoff = 0.0
        self._retry_at = 0.0

    def _warn_once(self, run: _Run, key: str, message: str) -> None:
        if key not in run.warned:
            run.warned.add(key)
            self._say(f"Shipping run files: {message}")


def _upload_artifact(client: Any, upload: Upload) -> None:
    """Upload one finished artifact (on the lane's thread): streamed, resumed,
    sha256-checked; the server records it (``whirr.shipping.artifacts``, imported when
    the shipper's thread starts)."""
    from whirr.shipping.artifacts import upload_artifact_file

    upload_artifact_file(client, upload.run_id, upload.attempt, upload.source, upload.path)
