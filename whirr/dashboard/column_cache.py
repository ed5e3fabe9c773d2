"""Parsed metric columns kept on disk, so a restarted dashboard opens a long run at once.

Parsing a million-row ``metrics.jsonl`` takes most of a second (seconds when its rows
are not plain numbers and go through Python objects, see ``fast.py``); loading the same
columns from a ``.npz`` takes milliseconds. After a read
that parsed at least ``MIN_BYTES`` of a run's file, its columns are written to
``cache/dashboard/<run_id>.<kind>.npz`` beside the ``runs`` directory (a project's
``.whirr/``, a server's data dir). The file records how many bytes of the JSONL it covers
and the last bytes of that prefix: a run's files only grow, so a cache whose prefix still
matches is the file's first rows, and only the lines after it are parsed. A cache that
does not match (the file was replaced or cut) is ignored and rewritten. The directory may
be deleted at any time.
"""

from __future__ import annotations

import logging
import os
import tempfile
import zipfile
from pathlib import Path

import numpy as np

from whirr.analytics.downsample import Array
from whirr.dashboard.series import Columns, read_new_lines
from whirr.filemodes import private_dir
from whirr.runfiles import RunFile, UnsafePath

log = logging.getLogger("whirr.dashboard")
#: Reads smaller than this are quick to repeat: not worth a cache write.
MIN_BYTES = 8 * 1024 * 1024
#: Seconds after such a read before its columns are written (see ``StoreSource.columns``).
SAVE_AFTER_S = 2.0
#: Bytes at the end of the cached prefix compared with the file.
CHECK = 256
#: 2: columns kept in the order the run first logged them (1 sorted them).
FORMAT = 2


def cache_dir(runs_dir: Path) -> Path:
    """The dashboard's cache directory beside ``runs_dir`` (it holds plotly.js gzipped
    too, see ``assets``)."""
    return runs_dir.parent / "cache" / "dashboard"


def cache_path(runs_dir: Path, run_id: str, kind: str) -> Path:
    """Where the columns of a run's ``kind`` file are cached."""
    return cache_dir(runs_dir) / f"{run_id}.{kind}.npz"


def _prefix_check(path: Path | RunFile, offset: int) -> bytes:
    with path.open("rb") as fh:
        fh.seek(max(0, offset - CHECK))
        return fh.read(min(offset, CHECK))


def load(cache: Path, source: Path | RunFile, columns: Columns) -> bool:
    """Fill empty ``columns`` from ``cache`` when it still describes the start of
    ``source``; True when it did."""
    try:
        # Our own handle: np.load leaks the one it opens when the file is not a zip.
        with cache.open("rb") as fh, np.load(fh, allow_pickle=False) as saved:
            meta = saved["meta"]
            if int(meta[0]) != FORMAT:
                return False
            offset, rows = int(meta[1]), int(meta[2])
            if source.stat().st_size < offset:
                return False
            if saved["check"].tobytes() != _prefix_check(source, offset):
                return False
            names = [str(n) for n in saved["names"]]
            data = saved["data"]
    except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile):
        return False  # absent, unreadable or from another version: parse instead
    if data.shape != (len(names), rows):
        return False
    columns.restore(offset, rows, {name: data[i] for i, name in enumerate(names)})
    return True


def build(cache: Path, source: Path | RunFile) -> bool:
    """Bring ``cache`` up to date with ``source`` (a run's JSONL of ``MIN_BYTES`` or more)
    without keeping the columns; True when it wrote. The dashboard does this for each run
    that finishes while it runs, so that run's first view reads the cache, not the JSONL."""
    try:
        if source.stat().st_size < MIN_BYTES:
            return False
    except (FileNotFoundError, UnsafePath):
        return False
    columns = Columns()
    load(cache, source, columns)  # a cache of the file's start: only the rest is parsed
    before = columns.offset
    read_new_lines(source, columns)
    if columns.offset == before:
        return False  # already current
    save(cache, source, *columns.snapshot())
    return True


def save_columns(cache: Path, source: Path | RunFile, columns: Columns) -> None:
    """Write what ``columns`` hold now (``save`` of their ``snapshot``)."""
    save(cache, source, *columns.snapshot())


def save(
    cache: Path, source: Path | RunFile, offset: int, rows: int, data: dict[str, Array]
) -> None:
    """Write a snapshot of a ``Columns`` (``Columns.snapshot()``); a failure (a read-only
    project, a full disk) only costs the next start a parse."""
    try:
        private_dir(cache.parent)  # 0700 (whirr.filemodes); mkstemp makes the file 0600
        names = list(data)  # the columns' own order: the order the run first logged them
        matrix = np.stack([data[n] for n in names]) if names else np.empty((0, rows))
        check = np.frombuffer(_prefix_check(source, offset), dtype=np.uint8)
        fd, tmp = tempfile.mkstemp(dir=cache.parent, prefix=f".{cache.name}.", suffix=".tmp")
        try:
            with os.fdopen(fd, "wb") as fh:
                np.savez(
                    fh,
                    meta=np.array([FORMAT, offset, rows], dtype=np.int64),
                    names=np.array(names, dtype=str),
                    data=matrix,
                    check=check,
                )
            os.replace(tmp, cache)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
    except OSError as exc:
        log.info("could not cache the columns of %s: %s", source, exc)
