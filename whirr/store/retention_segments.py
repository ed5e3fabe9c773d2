"""Archive segments: the liveness events retention moved out of a SQLite project's live
log, in compressed, read-only files beside its checkpoints.

A segment is ``archive/log-<first>-<last>.jsonl.gz`` beside ``whirr.db`` (and beside the
``checkpoints/`` folder, not in it: checkpoints are derived data that may be deleted at
any time; segments are history and never deleted). Each line is one event exactly as the
live table held it: its position, time (microseconds), stream, type and encoded data, so
a replay reading a segment folds the same bytes it would have read live. A segment holds
events of one retention pass in position order; segments of different passes may
interleave (a heartbeat kept live one day because its attempt still ran goes in a later
pass), which the history reader merges by position.

Writing one: a private scratch file, fsynced, renamed to ``<name>.pending`` and only then
are the rows deleted from the live table (one transaction); after the commit the file is
renamed to its final name and made read-only (0400). A crash leaves at worst a pending
segment whose rows may still be live: readers merge it anyway (a live row wins over the
same position in a segment) and the next pass finishes it.
"""

from __future__ import annotations

import contextlib
import fcntl
import gzip
import os
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import msgspec

from whirr.filemodes import create_private_file, private_dir
from whirr.store.scratch_files import fsync_path, remove_stale_scratches

DIRECTORY = "archive"
SUFFIX = ".jsonl.gz"
PENDING = ".pending"
_NAME = re.compile(r"^log-(\d{12})-(\d{12})\.jsonl\.gz(\.pending)?$")
#: gzip level: heartbeats compress ~10x at 6, and 9 costs twice the time for ~3% more.
LEVEL = 6


class Line(msgspec.Struct, frozen=True, array_like=True):
    """One archived event: position, recorded time (µs since the epoch), stream, type and
    the event's encoded JSON, kept as the very bytes the live table held."""

    position: int
    recorded_us: int
    stream: str
    type: str
    data: msgspec.Raw


_encode = msgspec.json.Encoder().encode
_decode = msgspec.json.Decoder(Line).decode


@dataclass(frozen=True)
class Segment:
    """One segment file: the positions of its first and last events, and where it is."""

    first: int
    last: int
    path: Path
    pending: bool

    @property
    def name(self) -> str:
        return self.path.name


def directory(db_path: str | os.PathLike[str]) -> Path:
    """Where the segments of the database at ``db_path`` live."""
    return Path(db_path).parent / DIRECTORY


def anchor_of(store: object) -> str | None:
    """The path ``store``'s segments live beside (``archive/`` next to it): a PostgreSQL
    store's ``archive_anchor`` (a server's ``DATA_DIR/whirr.db``), a SQLite store's
    file; None for a store with neither (memory, or PostgreSQL outside a server)."""
    for name in ("archive_anchor", "path"):
        value = getattr(store, name, None)
        if isinstance(value, str) and os.path.isabs(value):
            return value
    return None


def segments(db_path: str | os.PathLike[str]) -> list[Segment]:
    """The segments of the database at ``db_path``, by first position (pending ones too)."""
    return segments_in(directory(db_path))


def segments_in(where: Path) -> list[Segment]:
    """The segments in the folder ``where`` (a backup's ``archive/``, too)."""
    try:
        names = os.listdir(where)
    except (FileNotFoundError, NotADirectoryError):
        return []
    found = []
    for name in names:
        if m := _NAME.match(name):
            found.append(Segment(int(m.group(1)), int(m.group(2)), where / name, bool(m.group(3))))
    return sorted(found, key=lambda s: (s.first, s.last, s.name))


def write(db_path: str | os.PathLike[str], lines: Sequence[Line]) -> Segment:
    """Write ``lines`` (in position order, not empty) as a pending segment, on disk
    (fsynced, the folder too) before this returns."""
    where = private_dir(directory(db_path))
    first, last = lines[0].position, lines[-1].position
    final = where / f"log-{first:012d}-{last:012d}{SUFFIX}"
    pending = final.with_name(final.name + PENDING)
    scratch = where / f".scratch-{os.getpid()}-{first}.gz"
    create_private_file(scratch)
    try:
        with open(scratch, "wb") as raw:
            # mtime=0: the same events give the same bytes (a digest can compare them).
            with gzip.GzipFile(fileobj=raw, mode="wb", compresslevel=LEVEL, mtime=0) as gz:
                for line in lines:
                    gz.write(_encode(line) + b"\n")
            raw.flush()
            os.fsync(raw.fileno())
        os.replace(scratch, pending)
    except BaseException:
        scratch.unlink(missing_ok=True)
        raise
    fsync_path(where)
    return Segment(first, last, pending, True)


def seal(segment: Segment) -> Segment:
    """A pending segment whose rows left the live table: give it its final name, and
    make it read-only."""
    final = segment.path.with_name(segment.name.removesuffix(PENDING))
    os.chmod(segment.path, 0o400)
    os.replace(segment.path, final)
    fsync_path(final.parent)
    return Segment(segment.first, segment.last, final, False)


def read(segment: Segment) -> Iterator[Line]:
    """The events of ``segment`` in position order."""
    with gzip.open(segment.path, "rb") as gz:
        for raw in gz:
            yield _decode(raw)


def positions(segment: Segment) -> list[int]:
    """The positions ``segment`` holds."""
    return [line.position for line in read(segment)]


def remove_scratches(db_path: str | os.PathLike[str]) -> None:
    """Remove scratch files a killed pass left (never a pending or sealed segment)."""
    remove_stale_scratches(directory(db_path))


def private_dir_for(db_path: str | os.PathLike[str]) -> Path:
    """The segment folder of the database at ``db_path``, created (0700) if missing."""
    return private_dir(directory(db_path))


class Held(Exception):
    """``held(wait=False)`` found the archive taken by someone else."""


@contextlib.contextmanager
def held(db_path: str | os.PathLike[str], *, wait: bool) -> Iterator[Path]:
    """The archive of the database at ``db_path``, held exclusively (a lock file in it):
    a retention pass holds it while it moves rows, a backup while it copies the log and
    the segments, so a backup never holds a segment without its rows gone from its copy
    of the log, nor the reverse. ``wait=False`` raises :class:`Held` instead of waiting."""
    where = private_dir_for(db_path)
    fd = os.open(where / ".lock", os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | (0 if wait else fcntl.LOCK_NB))
        except BlockingIOError:
            raise Held(str(where)) from None
        yield where
    finally:
        os.close(fd)
