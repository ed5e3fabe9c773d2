"""Copies of a server's run files on this machine, kept up to date by appending.

``whirr compare``, ``export`` and ``sql`` against a server run the same DuckDB code as in a
project, over copies of the runs' ``metrics.jsonl``/``system.jsonl`` kept here, in
``<cache>/runs/<run_id>/`` (``<cache>`` is ``HttpWhirr.cache_dir``: by default
``~/.cache/whirr/<host_port>``, or ``$WHIRR_CACHE_DIR/<host_port>``). Run files only grow,
so each call fetches only the bytes added since the last (``Whirr.read_run_file`` from
the copy's size), several runs at once.

Before appending, the request starts ``OVERLAP`` bytes early and those bytes must match
the copy's end: a file that was replaced or cut (a run id reused by a new server on the
same address) is fetched again from the start rather than appended to. A run that had
finished when its copy was last completed is not asked about again until its
``finished_at`` changes (a resumed run). Copies are appended under an exclusive ``flock``,
so two whirr processes syncing the same run never write the same bytes twice; a reader
meanwhile sees at most a torn last line, which the JSONL readers skip.
"""

from __future__ import annotations

import fcntl
import os
import re
from collections.abc import Callable, Sequence
from pathlib import Path
from urllib.parse import urlsplit

from whirr.filemodes import open_private, private_dir, write_private
from whirr.services.run_files import RUN_ID
from whirr.wire import schemas

#: Bytes re-read before the copy's end to check that it is still the server's file.
OVERLAP = 64
#: Runs fetched at once.
THREADS = 8
_FILES = ("metrics", "system")

#: ``read(run_id, file, offset)``: whole lines of the server's file from ``offset``.
Reader = Callable[[str, str, int], schemas.RunFileChunk]


def cache_root(url: str) -> Path:
    """Where the copies of the server at ``url`` live: ``$WHIRR_CACHE_DIR/<host_port>``,
    else ``$XDG_CACHE_HOME/whirr/<host_port>``, else ``~/.cache/whirr/<host_port>``."""
    base = os.environ.get("WHIRR_CACHE_DIR")
    if not base:
        xdg = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
        base = str(Path(xdg) / "whirr")
    host = re.sub(r"[^A-Za-z0-9.-]", "_", urlsplit(url).netloc) or "server"
    return Path(base) / host


class RunFileMirror:
    """The copies of one server's run files under ``root`` (``<cache>/runs``)."""

    def __init__(self, root: Path, read: Reader) -> None:
        self.root = root
        self._read = read

    def sync_all(self, runs: Sequence[schemas.Run], file: str) -> dict[str, Path]:
        """Bring the copies of ``runs``' ``file`` up to date; the non-empty ones by run id."""
        if file not in _FILES:
            raise ValueError(f"no run file {file!r}")
        wanted = [run for run in runs if RUN_ID.fullmatch(run.id) and ".." not in run.id]
        found: dict[str, Path] = {}
        stale = []
        for run in wanted:
            path = self.root / run.id / f"{file}.jsonl"
            if _stamp(run) is not None and _read_text(_done(path)) == _stamp(run):
                if _size(path):
                    found[run.id] = path  # complete since the run finished
            else:
                stale.append(run)
        if len(stale) <= 1:
            paths = [self.sync(run, file) for run in stale]
        else:
            from concurrent.futures import ThreadPoolExecutor

            with ThreadPoolExecutor(min(THREADS, len(stale))) as pool:
                paths = list(pool.map(lambda run: self.sync(run, file), stale))
        found.update((run.id, path) for run, path in zip(stale, paths, strict=True) if path)
        return {run.id: found[run.id] for run in wanted if run.id in found}

    def sync(self, run: schemas.Run, file: str) -> Path | None:
        """Bring one copy up to date; its path, or None when the file is empty."""
        directory = self.root / run.id
        path = directory / f"{file}.jsonl"
        done = _done(path)
        stamp = _stamp(run)
        private_dir(directory)  # 0700/0600 like a project's runs (whirr.filemodes)
        with os.fdopen(open_private(path, os.O_RDWR | os.O_APPEND), "a+b") as fh:
            fcntl.flock(fh.fileno(), fcntl.LOCK_EX)  # released when the file closes
            size = fh.seek(0, os.SEEK_END)
            start = max(0, size - OVERLAP)
            fh.seek(start)
            overlap = fh.read()
            chunk = self._read(run.id, file, start)
            if not chunk.data.startswith(overlap) or chunk.size < size:
                # Not the file we copied (replaced, or cut short): copy it afresh.
                fh.truncate(0)
                size, overlap = 0, b""
                chunk = self._read(run.id, file, 0)
            fh.write(chunk.data[len(overlap) :])
            offset = chunk.offset + len(chunk.data)
            while chunk.data and offset < chunk.size:
                chunk = self._read(run.id, file, offset)
                fh.write(chunk.data)
                offset += len(chunk.data)
            fh.flush()
            size = fh.tell()
        if stamp is not None:
            _write_text(done, stamp)
        else:
            done.unlink(missing_ok=True)
        return path if size else None


def _stamp(run: schemas.Run) -> str | None:
    """What says a finished run's file no longer grows (its ``finished_at``): a copy
    completed after that is not asked about again while the run stays finished then."""
    if run.finished_at is None or run.status == "running":
        return None
    return run.finished_at.isoformat()


def _done(path: Path) -> Path:
    """The marker beside a copy holding the stamp it was completed under."""
    return path.with_suffix(".done")


def _size(path: Path) -> int:
    try:
        return os.stat(path).st_size
    except OSError:
        return 0


def _read_text(path: Path) -> str | None:
    try:
        return path.read_text()
    except OSError:
        return None


def _write_text(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    write_private(tmp, text.encode())
    os.replace(tmp, path)
