"""Run files under the server's data dir, reached only through checked paths.

A run id or artifact path comes from the network, so each is validated by shape first;
the files are then opened through ``whirr.runfiles``, which follows no symlink below the
runs directory and reads only regular files: neither ``../`` nor an absolute path nor a
symlink or FIFO planted by a job in its run directory reaches anything outside it.

Two views of a run's files: the run's whole directory (``list_run_files``,
``open_run_file``: what the HTTP API's ``/runs/{id}/artifacts`` serves, read-only, as the
original whirr did) and the files a user saved under its ``artifacts/`` (``list_artifacts``,
``open_artifact``: what the dashboard and ``whirr show`` list).
"""

from __future__ import annotations

import os
import re
import warnings
from collections.abc import Callable
from contextvars import ContextVar
from datetime import datetime
from pathlib import Path
from typing import Any, BinaryIO, TypeVar

import msgspec

from whirr.clock import UTC
from whirr.run import SkippedLine as SkippedLine  # where the CLI and tests find it
from whirr.runfiles import RunFile, UnsafePath, open_dir, open_file, walk_files
from whirr.services.errors import InvalidRequest, NotFound
from whirr.wire.schemas import ArtifactOut

#: What a run id may look like: ``job-12``, ``local-20240101-120000-abcdef``.
RUN_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,199}")
_decode_row = msgspec.json.Decoder(dict[str, Any]).decode
T = TypeVar("T")


#: Where ``_skip`` puts what it would warn about while ``collect_skipped`` runs (the
#: server passes them on in its answer; ``warnings.catch_warnings`` is process-wide, so
#: it cannot tell one request's reads from another's).
_collected: ContextVar[list[str] | None] = ContextVar("whirr_skipped_lines", default=None)


def _skip(run_id: str, name: str, line_no: int) -> None:
    message = f"{name} of run {run_id}: line {line_no} is not valid JSON; skipped"
    collected = _collected.get()
    if collected is not None:
        collected.append(message)
        return
    warnings.warn(SkippedLine(message), stacklevel=3)


def collect_skipped(read: Callable[[], T]) -> tuple[T, list[str]]:
    """``read()``'s result and the ``SkippedLine`` messages its readers had (not warned)."""
    token = _collected.set([])
    try:
        result = read()
        return result, _collected.get() or []
    finally:
        _collected.reset(token)


def check_run_id(run_id: str) -> str:
    """``run_id`` if it is shaped like one (422 otherwise: it could name another path)."""
    if not RUN_ID.fullmatch(run_id) or ".." in run_id:
        raise InvalidRequest(f"invalid run id {run_id!r}")
    return run_id


def run_dir(runs_dir: Path, run_id: str) -> Path:
    """The directory of ``run_id`` under ``runs_dir`` (which need not exist yet). For
    display and for the worker that writes there: readers open files with ``run_file``."""
    return runs_dir / check_run_id(run_id)


def run_file(runs_dir: Path, run_id: str, name: str) -> RunFile:
    """One of the run's own files (``output.log``, ``metrics.jsonl``, ...), to be opened
    safely by its reader."""
    return RunFile.of(runs_dir, check_run_id(run_id), name)


def artifact_parts(rel: str) -> tuple[str, ...]:
    """The components of an artifact path; 422 for one that is empty, absolute or
    climbs (``..``)."""
    if not rel or "\x00" in rel or rel.startswith(("/", "\\")) or len(rel) > 4096:
        raise InvalidRequest(f"invalid artifact path {rel!r}")
    parts = tuple(rel.replace("\\", "/").split("/"))
    if any(part in ("..", "", ".") for part in parts):
        raise InvalidRequest(f"invalid artifact path {rel!r}")
    return parts


def open_artifact(runs_dir: Path, run_id: str, rel: str) -> BinaryIO:
    """The artifact file ``rel`` of a run, open for reading; 422 for paths that try to
    leave the run's ``artifacts/`` (a symlink on the way or a file that is not regular
    included), 404 for files that are not there."""
    parts = artifact_parts(rel)
    try:
        return open_file(runs_dir, (check_run_id(run_id), "artifacts", *parts))
    except UnsafePath:
        raise InvalidRequest(f"artifact {rel!r} of run {run_id} is not a regular file") from None
    except OSError:
        raise NotFound(f"run {run_id} has no artifact {rel!r}") from None


def artifact_kind(runs_dir: Path, run_id: str, rel: str) -> str:
    """``file`` or ``dir`` for an artifact that exists as such under ``artifacts/``,
    reached without a symlink (422 for a symlink or special file, 404 when absent)."""
    parts = (check_run_id(run_id), "artifacts", *artifact_parts(rel))
    try:
        os.close(open_dir(runs_dir, parts))
        return "dir"
    except (FileNotFoundError, UnsafePath):
        pass  # a file, or nothing: open_artifact says which
    open_artifact(runs_dir, run_id, rel).close()
    return "file"


def list_artifacts(runs_dir: Path, run_id: str) -> list[ArtifactOut]:
    """Every regular file under the run's ``artifacts/`` directory, sorted by path.
    Symlinks are not followed and the listing is bounded (``runfiles.MAX_ENTRIES``)."""
    return [
        ArtifactOut(path=e.path, size=e.size, modified=datetime.fromtimestamp(e.mtime, UTC))
        for e in walk_files(runs_dir, (check_run_id(run_id), "artifacts"))
    ]


def list_run_files(runs_dir: Path, run_id: str) -> list[ArtifactOut]:
    """Every regular file under the run's directory, by path relative to it
    (``config.json``, ``output.log``, ``artifacts/model.pt``), sorted: what
    ``GET /runs/{id}/artifacts`` lists, as the original whirr did. Symlinks and special
    files are left out and the listing is bounded, as in :func:`list_artifacts`."""
    return [
        ArtifactOut(path=e.path, size=e.size, modified=datetime.fromtimestamp(e.mtime, UTC))
        for e in walk_files(runs_dir, (check_run_id(run_id),))
    ]


def open_run_file(runs_dir: Path, run_id: str, rel: str) -> BinaryIO:
    """The file ``rel`` of a run's directory (``output.log``, ``artifacts/model.pt``),
    open for reading; when the run directory has no such file, the saved artifact of that
    name (``model.pt`` for ``artifacts/model.pt``), so a bare artifact name still
    downloads. 422 for a path that tries to leave the run directory, a symlink on the way
    or a file that is not regular; 404 when neither is there."""
    parts = artifact_parts(rel)
    rid = check_run_id(run_id)
    tries = (
        [(rid, *parts)] if parts[0] == "artifacts" else [(rid, *parts), (rid, "artifacts", *parts)]
    )
    for candidate in tries:
        try:
            return open_file(runs_dir, candidate)
        except UnsafePath:
            raise InvalidRequest(f"file {rel!r} of run {run_id} is not a regular file") from None
        except FileNotFoundError:
            continue
        except OSError:
            break
    raise NotFound(f"run {run_id} has no file {rel!r}")


def read_metric_rows(runs_dir: Path, run_id: str, since: int, limit: int) -> list[dict[str, Any]]:
    """Rows of the run's ``metrics.jsonl`` with ``_idx >= since``, at most ``limit``.
    A torn or garbled line (a writer killed mid-write) is skipped, never an error."""
    rows: list[dict[str, Any]] = []
    try:
        fh = run_file(runs_dir, run_id, "metrics.jsonl").open()
    except (FileNotFoundError, UnsafePath):
        return rows
    with fh:
        for line_no, line in enumerate(fh, 1):
            if not line.endswith(b"\n"):
                break  # the last line is still being written
            try:
                row = _decode_row(line)
            except msgspec.DecodeError:
                _skip(run_id, "metrics.jsonl", line_no)
                continue
            idx = row.get("_idx")
            if isinstance(idx, int) and idx < since:
                continue
            rows.append(row)
            if len(rows) >= limit:
                break
    return rows


def read_system_rows(
    runs_dir: Path, run_id: str, since: int, limit: int
) -> tuple[list[dict[str, Any]], int]:
    """Samples of the run's ``system.jsonl`` from whole line ``since`` on, at most
    ``limit``: (samples, the line number after the last one read)."""
    rows: list[dict[str, Any]] = []
    line_no = 0
    try:
        fh = run_file(runs_dir, run_id, "system.jsonl").open()
    except (FileNotFoundError, UnsafePath):
        return rows, since
    with fh:
        for line in fh:
            if not line.endswith(b"\n"):
                break  # the last line is still being written
            line_no += 1
            if line_no <= since:
                continue
            try:
                rows.append(_decode_row(line))
            except msgspec.DecodeError:
                _skip(run_id, "system.jsonl", line_no)
                continue
            if len(rows) >= limit:
                break
    return rows, max(line_no, since)


def tail_rows(runs_dir: Path, run_id: str, name: str, count: int) -> list[dict[str, Any]]:
    """The last ``count`` whole rows of one of the run's JSONL files, read from its end
    (cheap on a file of millions of rows, and on rows of any length); a garbled line is
    skipped with a ``SkippedLine`` warning naming its line number, a torn last line is
    left out."""
    try:
        fh = run_file(runs_dir, run_id, name).open()
    except (FileNotFoundError, UnsafePath):
        return []
    with fh:
        end = fh.seek(0, os.SEEK_END)
        block, start, data = 64 * 1024, end, b""
        while start > 0:
            start = max(0, start - block)
            fh.seek(start)
            data = fh.read(end - start)
            if data.count(b"\n") > count:
                break
            block *= 2
        lines = data.split(b"\n")
        lines.pop()  # after the last newline: empty, or a line still being written
        if start > 0:
            lines = lines[1:]  # cut by the seek
        chosen = lines[-count:] if count else []
        rows = []
        for i, line in enumerate(chosen):
            try:
                rows.append(_decode_row(line))
            except msgspec.DecodeError:
                if line.strip():
                    before = len(lines) - len(chosen) + i  # whole lines before it here
                    _skip(run_id, name, _lines_before(fh, start) + before + 1)
    return rows


def _lines_before(fh: BinaryIO, start: int) -> int:
    """How many lines end before byte ``start`` (the line cut there counted too)."""
    if start == 0:
        return 0
    fh.seek(0)
    newlines, left = 0, start
    while left > 0:
        chunk = fh.read(min(left, 1 << 20))
        if not chunk:
            break
        newlines += chunk.count(b"\n")
        left -= len(chunk)
    return newlines + 1  # the line the window cut, left out of ``lines``
