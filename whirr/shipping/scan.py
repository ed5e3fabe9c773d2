"""What is new in a run directory, for the shipper to send.

Reads only, never writes; opens every file without following symlinks and only when it
is a regular file (``whirr.runfiles``), since the job owns its run directory. The job may
be writing while we read: a stream only grows, so a read from a known position returns
bytes that will not change; a whole file is read through one descriptor, and its stamp
(size, mtime) taken from that descriptor, so content and stamp always belong together.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import NamedTuple

from whirr.runfiles import UnsafePath, open_file, walk_files
from whirr.shipping.ledger import MAX_WHOLE_FILE, STREAMS, WHOLE_FILES, Stamp

#: Bytes per upload request.
CHUNK = 4 * 1024 * 1024
#: Names in artifacts/ still being written (``save_artifact`` copies to ``.NAME.PID.tmp``
#: and renames): never shipped.
_TEMP_SUFFIX = ".tmp"


def local_size(run_dir: Path, name: str) -> int:
    """The size of ``run_dir/name`` (0 when absent or not a regular file)."""
    try:
        with open_file(run_dir, (name,)) as fh:
            return os.fstat(fh.fileno()).st_size
    except (FileNotFoundError, UnsafePath):
        return 0


def stream_sizes(run_dir: Path) -> dict[str, int]:
    """The local size of every append stream."""
    return {name: local_size(run_dir, name) for name in STREAMS}


def stream_chunk(
    run_dir: Path, name: str, position: int, *, whole_lines: bool, limit: int = CHUNK
) -> bytes:
    """Up to ``limit`` bytes of stream ``name`` from local byte ``position``. With
    ``whole_lines`` the chunk ends at its last newline (a line still being written waits
    for the next scan), unless one line fills the whole chunk (it is sent in pieces)."""
    try:
        with open_file(run_dir, (name,)) as fh:
            data = os.pread(fh.fileno(), limit, position)
    except (FileNotFoundError, UnsafePath):
        return b""
    if whole_lines and data and not data.endswith(b"\n"):
        cut = data.rfind(b"\n")
        if cut >= 0:
            return data[: cut + 1]
        if len(data) < limit:
            return b""  # one unfinished line: wait for its newline
    return data


class WholeFile(NamedTuple):
    """A whole file to send, with the stamp it had when read."""

    name: str
    data: bytes
    stamp: Stamp


def changed_files(run_dir: Path, shipped: Mapping[str, Stamp]) -> list[WholeFile]:
    """The whole files (``meta.json``, ``config.json``...) whose stamp differs from the
    one last shipped; files over ``MAX_WHOLE_FILE`` are left out."""
    changed = []
    for name in WHOLE_FILES:
        try:
            with open_file(run_dir, (name,)) as fh:
                st = os.fstat(fh.fileno())
                stamp = Stamp(st.st_size, st.st_mtime_ns)
                if shipped.get(name) == stamp or st.st_size > MAX_WHOLE_FILE:
                    continue
                data = fh.read(MAX_WHOLE_FILE + 1)
        except (FileNotFoundError, UnsafePath):
            continue
        if len(data) != stamp.size:  # rewritten in place while we read: next scan
            continue
        changed.append(WholeFile(name, data, stamp))
    return changed


class ArtifactFile(NamedTuple):
    """A finished artifact: its path under ``artifacts/`` and its stamp."""

    path: str
    stamp: Stamp


def finished_artifacts(run_dir: Path, uploaded: Mapping[str, Stamp]) -> list[ArtifactFile]:
    """Regular files under ``artifacts/`` not uploaded in their current version; names
    being written (a leading ``.`` or a ``.tmp`` suffix, in any component) are skipped."""
    found = []
    for entry in walk_files(run_dir, ("artifacts",)):
        parts = entry.path.split("/")
        if any(p.startswith(".") or p.endswith(_TEMP_SUFFIX) for p in parts):
            continue
        stamp = Stamp(entry.size, int(entry.mtime * 1_000_000_000))
        if uploaded.get(entry.path) != stamp:
            found.append(ArtifactFile(entry.path, stamp))
    return found
