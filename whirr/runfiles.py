"""Opening a run's files without trusting its run directory.

A job controls everything under its run directory: it can replace ``output.log`` with a
symlink to ``/etc/shadow``, ``artifacts/`` with a symlink to ``/``, or a file with a FIFO
that blocks whoever opens it. Whoever reads run files on another's behalf (the server,
the dashboard) therefore opens them here: one component at a time, each relative to a
descriptor of the directory above it and with ``O_NOFOLLOW``, so no symlink is followed
anywhere below ``base``; files are opened non-blocking and kept only when ``fstat`` says
they are regular files. A symlink, FIFO, device or socket reads as :class:`UnsafePath`.

``base`` itself (a project's or server's ``runs/`` directory) is trusted: it belongs to
whoever runs whirr, not to a job.

What a job can still do is expose files it could read itself (a hard link or a copy);
that gives it nothing it did not have.
"""

from __future__ import annotations

import errno
import os
import stat
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import BinaryIO, NamedTuple

_DIR = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
# O_NONBLOCK: opening a FIFO for reading must not wait for a writer (it is refused next).
_FILE = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC | os.O_NOCTTY
#: errnos that mean "a component is a symlink or not a directory": not a path we follow.
_REFUSED = {errno.ELOOP, errno.ENOTDIR, errno.EMLINK}
#: Entries a listing visits at most (a job could create millions of files).
MAX_ENTRIES = 100_000
#: Directory levels a listing descends at most.
MAX_DEPTH = 32


class UnsafePath(OSError):
    """A component is a symlink, or the file is not a regular file (or not a directory
    where one was expected): it is never read."""


def check_name(part: str) -> str:
    """``part`` when it is one plain path component (not ``..``, ``.``, empty or with a
    separator or NUL)."""
    if part in ("", ".", "..") or "/" in part or "\x00" in part:
        raise UnsafePath(errno.EINVAL, f"not a plain file name: {part!r}")
    return part


def open_dir(base: Path, parts: Sequence[str]) -> int:
    """A descriptor of the directory ``base/parts...``, reached without following any
    symlink below ``base``. The caller closes it."""
    fd = os.open(base, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        for part in parts:
            child = _open_at(check_name(part), _DIR, fd)
            os.close(fd)
            fd = child
    except BaseException:
        os.close(fd)
        raise
    return fd


def open_file(base: Path, parts: Sequence[str]) -> BinaryIO:
    """The regular file ``base/parts...`` opened for reading (FileNotFoundError when
    absent, UnsafePath when a component is a symlink or the file is not regular)."""
    if not parts:
        raise UnsafePath(errno.EINVAL, "no file named")
    parent = open_dir(base, parts[:-1])
    try:
        fd = _open_at(check_name(parts[-1]), _FILE, parent)
    finally:
        os.close(parent)
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise UnsafePath(errno.EINVAL, f"not a regular file: {'/'.join(parts)}")
        os.set_blocking(fd, True)
    except BaseException:
        os.close(fd)
        raise
    return os.fdopen(fd, "rb")


def _open_at(name: str, flags: int, dir_fd: int) -> int:
    try:
        return os.open(name, flags, dir_fd=dir_fd)
    except OSError as exc:
        if exc.errno in _REFUSED:
            raise UnsafePath(exc.errno, f"refused to follow {name!r}: {exc.strerror}") from None
        raise


class RunFile:
    """One file of one run, opened safely each time: ``runs_dir/run_id/*parts``.
    Offers the two things readers need of a path, ``open`` and ``stat``."""

    __slots__ = ("parts", "run_id", "runs_dir")

    def __init__(self, runs_dir: Path, run_id: str, parts: tuple[str, ...]) -> None:
        self.runs_dir = runs_dir
        self.run_id = run_id
        self.parts = parts

    @classmethod
    def of(cls, runs_dir: Path, run_id: str, *parts: str) -> RunFile:
        return cls(runs_dir, run_id, parts)

    def open(self, mode: str = "rb") -> BinaryIO:
        """The file, opened for reading (only ``rb`` is offered)."""
        if mode != "rb":
            raise ValueError("run files are opened read-only, in binary")
        return open_file(self.runs_dir, (self.run_id, *self.parts))

    def stat(self) -> os.stat_result:
        """The file's stat, taken through a safe open."""
        with self.open() as fh:
            return os.fstat(fh.fileno())

    @property
    def name(self) -> str:
        return self.parts[-1]

    def __str__(self) -> str:
        return str(self.runs_dir.joinpath(self.run_id, *self.parts))


def read_from(file: RunFile, offset: int, max_bytes: int) -> bytes:
    """Up to ``max_bytes`` of ``file`` from ``offset``; empty when it is absent or unsafe
    (a job that replaced its log with a symlink or a FIFO has no log to show)."""
    try:
        with file.open() as fh:
            fh.seek(offset)
            return fh.read(max_bytes)
    except (FileNotFoundError, UnsafePath):
        return b""


class Entry(NamedTuple):
    """A regular file found by :func:`walk_files`."""

    path: str  # relative, ``/``-separated
    size: int
    mtime: float


def walk_files(base: Path, parts: Sequence[str], limit: int = MAX_ENTRIES) -> Iterator[Entry]:
    """Every regular file under ``base/parts...``, depth first in name order, never
    following a symlink and never leaving the directory; at most ``limit`` entries are
    looked at and ``MAX_DEPTH`` levels entered. Nothing when the directory is absent."""
    try:
        top = open_dir(base, parts)
    except (FileNotFoundError, UnsafePath):
        return
    budget = [limit]
    try:
        yield from _walk(top, "", 0, budget)
    finally:
        os.close(top)


def _walk(fd: int, prefix: str, depth: int, budget: list[int]) -> Iterator[Entry]:
    with os.scandir(fd) as it:
        entries = sorted(it, key=lambda e: e.name)
    for entry in entries:
        if budget[0] <= 0:
            return
        budget[0] -= 1
        rel = prefix + entry.name
        try:
            if entry.is_symlink():
                continue
            if entry.is_dir(follow_symlinks=False):
                if depth + 1 >= MAX_DEPTH:
                    continue
                child = _open_at(entry.name, _DIR, fd)
                try:
                    yield from _walk(child, rel + "/", depth + 1, budget)
                finally:
                    os.close(child)
            elif entry.is_file(follow_symlinks=False):
                st = entry.stat(follow_symlinks=False)
                yield Entry(rel, st.st_size, st.st_mtime)
        except (FileNotFoundError, UnsafePath):
            continue  # removed or swapped for a symlink while we looked: skip it
