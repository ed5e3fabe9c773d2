"""The server's side of run-file shipping: what a worker without the server's filesystem
uploads lands in ``<data-dir>/runs/<run_id>/``, as if the job had written it there.

Append streams (``output.log``, ``metrics.jsonl``, ``system.jsonl``) arrive by
attempt-local byte offset. The first upload of attempt K to a stream fixes its BASE: the
server file's size then. Attempt K's local offset 0 is the server's byte BASE_K, so
attempts append one after the other in one file, as a local retry appends to the same
files: ``_idx`` and every view read the run as in local mode. An upload at an offset the
server has already seen is a retry: only the bytes past what is there are appended
(idempotent); one past the end is a gap (``OffsetGap``, the shipper resumes from the size
it carries). An upload for an attempt that is not the job's current one is refused
(``StaleAttempt``): attempts never mix.

Whole files (``meta.json``, ...) are replaced atomically. The index of bases and final
sizes lives outside the run directory, in ``<data-dir>/shipping/<run_id>.json``, so a job
(which controls its run directory in shared mode) cannot forge it.

Pure of HTTP: the routes in ``whirr.api.routes.shipping`` call this on the reader pool.
"""

from __future__ import annotations

import errno
import os
import secrets
import stat
import threading
import weakref
from dataclasses import dataclass
from pathlib import Path

import msgspec

from whirr.filemodes import DIR_MODE, FILE_MODE, private_dir
from whirr.projections import JobView, RunView
from whirr.runfiles import UnsafePath, open_dir
from whirr.services.errors import InvalidRequest, InvalidState, NotFound, OffsetGap, StaleAttempt
from whirr.services.run_files import check_run_id
from whirr.services.run_removal import missing_run, remove_run_dir
from whirr.store import EventStore
from whirr.wire.shipping import (
    APPEND_STREAMS,
    MAX_WHOLE_FILE,
    SHIPPED_FILES,
    WHOLE_FILES,
    FilesMode,
    FileState,
    RunFiles,
    RunFileState,
)

#: The index directory under the data dir.
SHIPPING_DIR = "shipping"
_APPEND = os.O_RDWR | os.O_APPEND | os.O_CREAT | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC
_NEW = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC


class AttemptIndex(msgspec.Struct, kw_only=True):
    """What the server knows of one attempt's uploads."""

    #: Server byte of each stream where this attempt's offset 0 lies.
    bases: dict[str, int] = {}
    #: The attempt's final local sizes, once its worker reported them.
    final: dict[str, int] | None = None


class RunIndex(msgspec.Struct, kw_only=True):
    """``<data-dir>/shipping/<run_id>.json``."""

    attempts: dict[int, AttemptIndex] = {}


@dataclass(frozen=True)
class RunContext:
    """A run as shipping sees it: its current attempt and whether it still runs."""

    run: RunView
    job: JobView | None
    attempt: int
    ended: bool

    @property
    def said_mode(self) -> str | None:
        return self.run.files_mode


class Shipping:
    """Uploads into, and the state of, the run files under ``runs_dir``."""

    def __init__(self, store: EventStore, data_dir: Path, runs_dir: Path) -> None:
        self.store = store
        self.index_dir = Path(data_dir) / SHIPPING_DIR
        self.runs_dir = runs_dir
        self._guard = threading.Lock()
        self._locks: weakref.WeakValueDictionary[str, threading.Lock] = (
            weakref.WeakValueDictionary()
        )

    # -- reads --------------------------------------------------------------------------
    def files(self, run_id: str) -> RunFiles:
        """The run's files on the server with their state (404 for an unknown run)."""
        ctx = self._context(run_id)
        lock = self._lock(run_id)
        with lock:
            index = self._load(run_id)
            return self._describe(ctx, index)

    def file_state(self, run_id: str, name: str) -> tuple[FilesMode, RunFileState | None]:
        """The run's mode and the state of one of its files (None: not a shipped name)."""
        described = self.files(run_id)
        return described.mode, described.files.get(name)

    # -- writes -------------------------------------------------------------------------
    def upload(self, run_id: str, name: str, attempt: int, offset: int, data: bytes) -> int:
        """Store an upload; the attempt-local size after it."""
        kind = check_name(name)
        with self._lock(run_id):
            # Asked under the run's lock, which ``forget`` takes after a delete: an upload
            # either lands before the files are removed or finds the run deleted (410).
            ctx = self._context(run_id)
            if ctx.said_mode == "shared":
                raise InvalidState(
                    f"run {run_id}'s worker writes its files in place on the server's "
                    "filesystem: nothing to upload"
                )
            index = self._load(run_id)
            self._check_attempt(ctx, index, attempt)
            if kind == "whole":
                return self._replace(run_id, index, name, attempt, offset, data)
            return self._append(run_id, index, name, attempt, offset, data)

    def final(self, run_id: str, attempt: int, sizes: dict[str, int]) -> RunFiles:
        """Record the attempt's final local sizes; the run's files after."""
        for name in sizes:
            check_name(name)
        with self._lock(run_id):
            ctx = self._context(run_id)
            index = self._load(run_id)
            self._check_attempt(ctx, index, attempt)
            entry = index.attempts.setdefault(attempt, AttemptIndex())
            entry.final = dict(sizes)
            self._save(run_id, index)
            return self._describe(ctx, index)

    def forget(self, run_id: str) -> bool:
        """Remove what the server holds of a deleted run's shipped files: its directory
        and its index (once ``run.deleted`` is in the log: uploads after it are refused);
        whether there was any."""
        check_run_id(run_id)
        with self._lock(run_id):
            removed = remove_run_dir(self.runs_dir, run_id)
            try:
                self._index_path(run_id).unlink()
            except FileNotFoundError:
                return removed
            return True

    # -- the parts ----------------------------------------------------------------------
    def _context(self, run_id: str) -> RunContext:
        check_run_id(run_id)
        run = self.store.run(run_id)
        if run is None:
            raise missing_run(self.store, run_id)
        if run.job_id is None:  # a direct run: one attempt, numbered 0
            return RunContext(run, None, 0, run.status != "running")
        job = self.store.job(run.job_id)
        if job is None:
            raise NotFound(f"no job #{run.job_id} for run {run_id!r}")
        return RunContext(run, job, job.attempt, job.status != "running")

    def _check_attempt(self, ctx: RunContext, index: RunIndex, attempt: int) -> None:
        """Uploads are for the job's current attempt, even after it ended. The attempt
        before it may still ship its tail while the job waits in the queue for the next
        one and nothing of the next one arrived yet: it then appends where the next
        attempt's base will be fixed, so nothing mixes."""
        if attempt == ctx.attempt:
            return
        job = ctx.job
        previous_tail = (
            job is not None
            and attempt == ctx.attempt - 1
            and job.status == "queued"
            and not any(k > attempt for k in index.attempts)
        )
        if not previous_tail:
            raise StaleAttempt(
                f"attempt {attempt} of run {ctx.run.id} is not its current one "
                f"({ctx.attempt}): its files are refused",
                ctx.attempt,
            )

    def _append(
        self, run_id: str, index: RunIndex, name: str, attempt: int, offset: int, data: bytes
    ) -> int:
        entry = index.attempts.get(attempt)
        base = entry.bases.get(name) if entry is not None else None
        dir_fd = self._run_dir(run_id)
        try:
            fd = _open_regular(name, _APPEND, dir_fd)
        finally:
            os.close(dir_fd)
        try:
            size = os.fstat(fd).st_size
            if base is None:
                if offset > 0:
                    raise OffsetGap(f"{name} of attempt {attempt} starts at offset 0", 0)
                if name.endswith(".jsonl") and size > 0 and os.pread(fd, 1, size - 1) != b"\n":
                    # An earlier attempt's torn last line must not swallow this one's first.
                    size += _write_all(fd, b"\n")
                base = size
                index.attempts.setdefault(attempt, AttemptIndex()).bases[name] = base
                self._save(run_id, index)
            local = size - base
            if offset > local:
                raise OffsetGap(
                    f"{name} of attempt {attempt}: the server has {local} bytes, "
                    f"the upload starts at {offset}",
                    local,
                )
            rest = data[local - offset :]
            return local + _write_all(fd, rest)
        finally:
            os.close(fd)

    def _replace(
        self, run_id: str, index: RunIndex, name: str, attempt: int, offset: int, data: bytes
    ) -> int:
        if offset != 0:
            raise InvalidRequest(f"{name} is replaced whole: offset must be 0")
        if len(data) > MAX_WHOLE_FILE:
            raise InvalidRequest(f"{name} is larger than {MAX_WHOLE_FILE} bytes")
        if attempt not in index.attempts:
            index.attempts[attempt] = AttemptIndex()
            self._save(run_id, index)
        dir_fd = self._run_dir(run_id)
        try:
            try:
                info = os.stat(name, dir_fd=dir_fd, follow_symlinks=False)
            except FileNotFoundError:
                pass
            else:
                if not stat.S_ISREG(info.st_mode):
                    raise InvalidRequest(
                        f"{name} of run {run_id} on the server is not a regular file"
                    )
            tmp = f".{name}.{secrets.token_hex(6)}.tmp"
            fd = os.open(tmp, _NEW, FILE_MODE, dir_fd=dir_fd)
            try:
                _write_all(fd, data)
            finally:
                os.close(fd)
            # rename replaces a name, never follows it: the file lands in the run dir.
            os.replace(tmp, name, src_dir_fd=dir_fd, dst_dir_fd=dir_fd)
        finally:
            os.close(dir_fd)
        return len(data)

    def _run_dir(self, run_id: str) -> int:
        """A descriptor of the run's directory on the server, created 0700 if absent;
        422 when it is a symlink or not a directory."""
        private_dir(self.runs_dir)
        runs_fd = os.open(self.runs_dir, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        try:
            os.mkdir(run_id, DIR_MODE, dir_fd=runs_fd)
        except FileExistsError:
            pass
        finally:
            os.close(runs_fd)
        try:
            return open_dir(self.runs_dir, (run_id,))
        except UnsafePath:
            raise InvalidRequest(f"run {run_id}'s directory on the server is not one") from None

    def _describe(self, ctx: RunContext, index: RunIndex) -> RunFiles:
        mode = _mode(ctx, index)
        entry = index.attempts.get(ctx.attempt)
        final = entry.final if entry is not None else None
        sizes = self._sizes(ctx.run.id)
        out: dict[str, RunFileState] = {}
        for name in SHIPPED_FILES:
            size = sizes.get(name)
            whole = name in WHOLE_FILES
            if whole and size is None and (final is None or name not in final):
                continue  # a whole file the job never wrote
            have = size or 0
            base = entry.bases.get(name) if entry is not None else None
            local = have if whole else (have - base if base is not None else 0)
            # A stream left out of the final sizes was empty; a whole file left out is
            # whatever arrived last (it is replaced whole, never appended).
            final_size = None if final is None else final.get(name, None if whole else 0)
            out[name] = RunFileState(
                size=have,
                attempt_size=local,
                final_size=final_size,
                state=_state(mode, ctx.ended, whole, size, local, final_size),
            )
        return RunFiles(
            run_id=ctx.run.id,
            attempt=ctx.attempt,
            mode=mode,
            files=out,
            hostname=ctx.run.hostname,
            worker_run_dir=ctx.run.worker_run_dir,
        )

    def _sizes(self, run_id: str) -> dict[str, int]:
        """Sizes of the shipped names that are regular files in the run's directory."""
        try:
            dir_fd = open_dir(self.runs_dir, (run_id,))
        except (FileNotFoundError, UnsafePath):
            return {}
        sizes: dict[str, int] = {}
        try:
            for name in SHIPPED_FILES:
                try:
                    info = os.stat(name, dir_fd=dir_fd, follow_symlinks=False)
                except FileNotFoundError:
                    continue
                if stat.S_ISREG(info.st_mode):
                    sizes[name] = info.st_size
        finally:
            os.close(dir_fd)
        return sizes

    def _lock(self, run_id: str) -> threading.Lock:
        with self._guard:
            lock = self._locks.get(run_id)
            if lock is None:
                lock = threading.Lock()
                self._locks[run_id] = lock
            return lock

    def _index_path(self, run_id: str) -> Path:
        return self.index_dir / f"{run_id}.json"

    def _load(self, run_id: str) -> RunIndex:
        try:
            raw = self._index_path(run_id).read_bytes()
        except FileNotFoundError:
            return RunIndex()
        return msgspec.json.decode(raw, type=RunIndex)

    def _save(self, run_id: str, index: RunIndex) -> None:
        """Write the index atomically (a crash leaves the old one or the new one)."""
        private_dir(self.index_dir)
        path = self._index_path(run_id)
        tmp = path.with_name(f".{path.name}.{secrets.token_hex(6)}.tmp")
        fd = os.open(tmp, _NEW, FILE_MODE)
        try:
            _write_all(fd, msgspec.json.encode(index))
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, path)


def check_name(name: str) -> str:
    """``append`` or ``whole`` for a file the shipping routes take; 422 otherwise."""
    if name in APPEND_STREAMS:
        return "append"
    if name in WHOLE_FILES:
        return "whole"
    raise InvalidRequest(
        f"{name[:100]!r} is not a run file that is shipped (one of: {', '.join(SHIPPED_FILES)})"
    )


def _mode(ctx: RunContext, index: RunIndex) -> FilesMode:
    said = ctx.said_mode
    if said == "shipped" or (said is None and index.attempts):
        return "shipped"
    if said == "local":
        return "local"
    if said == "shared" or ctx.job is not None:
        return "shared"  # a job's files without a word: an old worker writes in place
    return "local"  # a direct run that ships nothing: its files stay on its machine


def _state(
    mode: FilesMode, ended: bool, whole: bool, size: int | None, local: int, final: int | None
) -> FileState:
    if mode != "shipped":
        return mode
    if final is not None:
        if whole:
            return "complete" if (size or 0) == final else "missing_tail"
        return "complete" if local >= final else "missing_tail"
    if not size:
        return "pending"
    if whole:  # replaced whole on each change: what is here is all there is so far
        return "complete" if ended else "live"
    if not ended:
        return "live"
    return "missing_tail"  # ended, and its worker never said how much there was


def _open_regular(name: str, flags: int, dir_fd: int) -> int:
    try:
        fd = os.open(name, flags, FILE_MODE, dir_fd=dir_fd)
    except OSError as exc:
        if exc.errno in (errno.ELOOP, errno.ENOTDIR, errno.ENXIO):
            raise InvalidRequest(f"{name} on the server is not a regular file") from None
        raise
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        os.close(fd)
        raise InvalidRequest(f"{name} on the server is not a regular file")
    os.set_blocking(fd, True)
    return fd


def _write_all(fd: int, data: bytes) -> int:
    view = memoryview(data)
    done = 0
    while done < len(view):
        done += os.write(fd, view[done:])
    return done
