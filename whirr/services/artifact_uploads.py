"""Receiving artifacts a worker uploads: partial files, resume, size and sha256 checks.

A worker that does not share the server's filesystem uploads each finished artifact in
one or more ``PUT``s (``whirr.api.routes.artifact_uploads``), each appended at its
``offset`` to a partial file kept outside the run directories, in
``<data-dir>/shipping/partial/<run_id>/<attempt>/`` (a job controls its run directory; it
must not see or replace a half-received file). The offset rules are those of the run-file
streams: ``offset == size`` appends, ``offset < size`` is a retry whose first bytes are
already there (only the rest is appended), ``offset > size`` is a gap (409 with the size
to resume from). ``complete`` checks the size and sha256 the worker computed while
reading its file, discards the partial file when either differs, and hands it to the
artifact store (``whirr.services.artifact_store``), then records ``run.artifact_saved``.

Uploads carry the attempt: only the job's current attempt (0 for a direct run) may
upload, even after it ended, as long as no newer attempt exists; a newer attempt's first
upload removes the older attempts' partial files.

The sha256 is computed as bytes arrive when an upload runs from offset 0 in this server
process; after a resume or a restart ``complete`` reads the partial file once instead.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import shutil
import threading
from pathlib import Path
from typing import Any, NamedTuple

from whirr.filemodes import FILE_MODE, private_dir
from whirr.projections import RunView
from whirr.services import run_files
from whirr.services.artifact_store import ArtifactStore
from whirr.services.errors import (
    InvalidRequest,
    NotFound,
    OffsetGap,
    StaleAttempt,
    WhirrError,
)
from whirr.services.run_removal import missing_run, remove_tree
from whirr.services.runs import Runs
from whirr.store import EventStore
from whirr.wire.artifact_uploads import StoredArtifact

#: ``whirr server --max-artifact-size``'s default: 20 GiB.
DEFAULT_MAX_SIZE = 20 << 30
_READ = 1 << 20
#: Chunks one ``writev`` takes at most (Linux allows 1024).
_MAX_IOV = 512


class ArtifactTooLarge(WhirrError):
    """An artifact larger than the server's ``--max-artifact-size``."""

    status = 413


def current_attempt(store: EventStore, run_id: str) -> tuple[RunView, int]:
    """The run (422 for a malformed id, 404 for an unknown one, 410 for a deleted one) and
    the attempt that may
    upload to it: its job's current attempt, 0 for a direct run."""
    run_files.check_run_id(run_id)
    run = store.run(run_id)
    if run is None:
        raise missing_run(store, run_id)  # 410 for a deleted run
    if run.job_id is None:
        return run, 0
    job = store.job(run.job_id)
    return run, 0 if job is None else job.attempt


class Partial:
    """A partial upload open for appending; ``size`` is its length now. ``write`` appends
    a batch; ``hash`` feeds the same batch to the running sha256 when the upload is
    hashed from its first byte. The two release the GIL and touch different things (the
    file, the hash state), so the route runs them at the same time, on two threads."""

    def __init__(self, fd: int, size: int, hasher: Any | None) -> None:
        self.fd = fd
        self.size = size
        self._hasher = hasher
        #: The byte the running sha256 has reached (``size`` after each whole batch;
        #: it differs when a write or a hash failed half way: the state is then dropped).
        self.hashed_to = size

    @property
    def hashed(self) -> bool:
        """True when the upload is hashed as it arrives (``hash`` does something)."""
        return self._hasher is not None

    def write(self, chunks: list[bytes]) -> None:
        """Append ``chunks`` (all of them: one ``writev`` when it takes them whole)."""
        total = sum(len(c) for c in chunks)
        if len(chunks) > _MAX_IOV:
            chunks = [b"".join(chunks)]
        done = os.writev(self.fd, chunks)
        if done < total:  # a short write: finish the rest chunk by chunk
            view = memoryview(b"".join(chunks))[done:]
            while view:
                view = view[os.write(self.fd, view) :]
        self.size += total

    def hash(self, chunks: list[bytes]) -> None:
        """Feed ``chunks`` to the running sha256 (batches in the order they arrived)."""
        if self._hasher is not None:
            for chunk in chunks:
                self._hasher.update(chunk)
                self.hashed_to += len(chunk)

    def close(self) -> None:
        os.close(self.fd)


class ArtifactUploads:
    """The server's partial uploads and what completes them."""

    def __init__(
        self, store: EventStore, data_dir: Path, artifacts: ArtifactStore, max_size: int
    ) -> None:
        self.store = store
        self.partial_dir = data_dir / "shipping" / "partial"
        self.artifacts = artifacts
        self.max_size = max_size
        #: (run, attempt, path) -> (sha256 so far, bytes it covers): uploads hashed as
        #: they arrive (in memory only: a restart re-reads the partial file instead).
        self._hashes: dict[tuple[str, int, str], tuple[Any, int]] = {}
        self._lock = threading.Lock()

    # -- checks ---------------------------------------------------------------------
    def check(self, run_id: str, attempt: int, rel: str) -> tuple[RunView, tuple[str, ...]]:
        """The run and the path's parts, when ``attempt`` may upload ``rel`` to it (422
        for a path that leaves ``artifacts/``, 404 for an unknown run, 409 otherwise)."""
        parts = run_files.artifact_parts(rel)
        run, current = current_attempt(self.store, run_id)
        if attempt != current:
            raise StaleAttempt(
                f"attempt {attempt} of run {run_id} is not its current one ({current})", current
            )
        return run, parts

    def _file(self, run_id: str, attempt: int, rel: str) -> Path:
        # A flat name per path: no directory of a job's choosing is created here.
        digest = hashlib.sha256(rel.encode()).hexdigest()[:40]
        return self.partial_dir / run_id / str(attempt) / f"{digest}.part"

    # -- receiving ------------------------------------------------------------------
    def size(self, run_id: str, attempt: int, rel: str) -> int:
        """Bytes received so far of ``rel`` by ``attempt`` (0 when none)."""
        _, parts = self.check(run_id, attempt, rel)
        try:
            return self._file(run_id, attempt, "/".join(parts)).stat().st_size
        except FileNotFoundError:
            return 0

    def open(self, run_id: str, attempt: int, rel: str, offset: int, length: int | None) -> Partial:
        """The partial file of ``rel``, open to append the body of a ``PUT`` at
        ``offset`` (``length`` bytes when the request says): 409 ``offset_gap`` past its
        end, 413 when it would outgrow the limit. The caller skips the body's first
        ``size - offset`` bytes, which the server has already."""
        _, parts = self.check(run_id, attempt, rel)
        rel = "/".join(parts)
        if length is not None and offset + length > self.max_size:
            raise ArtifactTooLarge(
                f"artifact {rel!r} would be larger than this server takes ({self.max_size} bytes)"
            )
        self._drop_older_attempts(run_id, attempt)
        path = self._file(run_id, attempt, rel)
        private_dir(path.parent)
        flags = os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_NOFOLLOW | os.O_CLOEXEC
        fd = os.open(path, flags, FILE_MODE)
        size = os.fstat(fd).st_size
        if offset > size:
            os.close(fd)
            raise OffsetGap(f"upload of {rel!r} starts at {offset} but the server has {size}", size)
        key = (run_id, attempt, rel)
        with self._lock:
            hashed = self._hashes.get(key)
            if size == 0:
                hashed = (hashlib.sha256(), 0)
                self._hashes[key] = hashed
            elif hashed is not None and hashed[1] != size:
                hashed = None  # bytes arrived we did not hash (another server process)
                self._hashes.pop(key, None)
        return Partial(fd, size, None if hashed is None else hashed[0])

    def finish_write(self, run_id: str, attempt: int, rel: str, partial: Partial) -> None:
        """Close ``partial`` and note how far its running sha256 goes; when the run was
        deleted while it arrived, remove it (410)."""
        partial.close()
        self._unless_deleted(run_id)
        key = (run_id, attempt, "/".join(run_files.artifact_parts(rel)))
        with self._lock:
            hashed = self._hashes.get(key)
            if hashed is not None and partial.hashed and partial.hashed_to == partial.size:
                self._hashes[key] = (hashed[0], partial.size)
            elif hashed is not None:  # the hash and the file parted ways: re-read at the end
                self._hashes.pop(key, None)

    def forget(self, run_id: str) -> bool:
        """Remove a deleted run's partial uploads; whether there were any."""
        base = self.partial_dir / run_files.check_run_id(run_id)
        if not base.is_dir():
            return False
        remove_tree(base)
        return True

    def _unless_deleted(
        self, run_id: str, *, stored: bool = False, location: str | None = None
    ) -> None:
        """After a write: when the run was deleted meanwhile, take back what was written
        (its partial uploads; with ``stored``, what the artifact store made, at
        ``location``) and refuse (410). A delete removes files only after
        ``run.deleted`` is in the log, so whichever of the two comes second removes them."""
        if self.store.run(run_id) is not None:
            return
        self.forget(run_id)
        if stored:
            self.artifacts.remove_stored(run_id, location)
        raise missing_run(self.store, run_id)

    def _drop_older_attempts(self, run_id: str, attempt: int) -> None:
        base = self.partial_dir / run_id
        if not base.is_dir():
            return
        for entry in base.iterdir():
            if entry.name.isdigit() and int(entry.name) < attempt:
                shutil.rmtree(entry, ignore_errors=True)

    # -- completing -----------------------------------------------------------------
    def verify_and_store(
        self, run_id: str, attempt: int, rel: str, size: int, sha256: str
    ) -> Ready:
        """Check the received file against ``size`` and ``sha256`` (422 and discarded
        when either differs) and hand it to the artifact store; ``record`` then appends
        the event. An artifact already stored with that size and sha256 (a retry whose
        first answer was lost) is answered again."""
        run, parts = self.check(run_id, attempt, rel)
        rel = "/".join(parts)
        path = self._file(run_id, attempt, rel)
        with self._lock:
            hashed = self._hashes.pop((run_id, attempt, rel), None)
        try:
            got = path.stat().st_size
        except FileNotFoundError:
            for saved in run.artifacts:
                if (saved.path, saved.size, saved.sha256) == (rel, size, sha256):
                    return Ready(rel, size, sha256, saved.location, recorded=True)
            raise NotFound(f"no upload of {rel!r} for attempt {attempt} of run {run_id}") from None
        if size > self.max_size:
            path.unlink()
            raise ArtifactTooLarge(f"artifact {rel!r} is larger than this server takes")
        if got != size:
            path.unlink()
            raise InvalidRequest(
                f"artifact {rel!r}: {got} bytes arrived, {size} announced (upload discarded)"
            )
        digest = hashed[0].hexdigest() if hashed is not None and hashed[1] == got else None
        if digest is None:
            digest = _sha256_of(path)
        if digest != sha256:
            path.unlink()
            raise InvalidRequest(
                f"artifact {rel!r}: sha256 {digest} of what arrived is not {sha256} "
                "(upload discarded)"
            )
        try:
            location = self.artifacts.put(run_id, parts, path)
        except Exception:
            # A delete that removed the partial file under it: say so (410), and take
            # back the directories the store made on the way.
            self._unless_deleted(run_id, stored=True)
            raise
        with contextlib.suppress(OSError):
            path.parent.rmdir()  # the attempt's last partial file: tidy up
        self._unless_deleted(run_id, stored=True, location=location)
        return Ready(rel, size, sha256, location)

    def record(self, run_id: str, ready: Ready) -> StoredArtifact:
        """Append ``run.artifact_saved`` for a stored artifact (unless already recorded;
        410 when the run was deleted since: the delete removes the file)."""
        current_attempt(self.store, run_id)
        if not ready.recorded:
            Runs(self.store, hostname="").artifact_saved(
                run_id, ready.path, ready.size, sha256=ready.sha256, location=ready.location
            )
        return StoredArtifact(
            path=ready.path, size=ready.size, sha256=ready.sha256, stored_in=_kind(ready.location)
        )


class Ready(NamedTuple):
    """A checked artifact in the store, to be recorded."""

    path: str
    size: int
    sha256: str
    location: str | None
    recorded: bool = False


def _kind(location: str | None) -> str:
    return "local" if location is None else location.split(":", 1)[0]


def _sha256_of(path: Path) -> str:
    hasher = hashlib.sha256()
    with path.open("rb") as fh:
        while chunk := fh.read(_READ):
            hasher.update(chunk)
    return hasher.hexdigest()
