"""Reading and writing a run's files (``meta.json``, ``metrics.jsonl``, ``system.jsonl``).

Readers tolerate a torn last line (a process killed mid-write). A damaged line anywhere
else is skipped with a ``SkippedLine`` warning naming the file and its line number: one bad
line must not make a whole run unreadable, and silently skipping it would hide real damage.
The server's readers (``whirr.services.run_files``) treat lines the same way.
"""

from __future__ import annotations

import contextlib
import os
import warnings
from pathlib import Path
from typing import Any

import msgspec

from whirr.filemodes import write_private

_json = msgspec.json.Encoder()
_decode = msgspec.json.decode
_decode_row = msgspec.json.Decoder(dict[str, Any]).decode
_TAIL_CHUNK = 64 * 1024


class MetricsCorrupt(ValueError):
    """Kept for callers that catch it: the readers no longer raise it (a damaged line is
    a ``SkippedLine`` warning)."""


class SkippedLine(UserWarning):
    """A whole line of a run's JSONL file that does not decode: left out of what is read,
    and said (with its line number), never silently. The CLI prints it as a warning."""


def _metrics_path(path: str | os.PathLike[str], name: str) -> Path:
    p = Path(path)
    return p / name if p.is_dir() else p


def read_metrics(path: str | os.PathLike[str]) -> list[dict[str, Any]]:
    """Every row of a ``metrics.jsonl`` (give the file or the run directory).

    A missing file reads as no rows. A torn last line (no newline, not valid JSON) is
    dropped; an undecodable line anywhere else is skipped with a ``SkippedLine`` warning
    naming its line number."""
    return read_jsonl(_metrics_path(path, "metrics.jsonl"))


def read_system_metrics(path: str | os.PathLike[str]) -> list[dict[str, Any]]:
    """Every sample of a ``system.jsonl`` (file or run directory), as ``read_metrics``."""
    return read_jsonl(_metrics_path(path, "system.jsonl"))


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    """Rows of a JSONL file written by whirr: a torn last line is dropped, a damaged line
    before it skipped with a ``SkippedLine`` warning."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return []
    lines = data.split(b"\n")
    # After the final newline there is either nothing or a line whose write was cut short.
    torn = lines.pop()
    rows: list[dict[str, Any]] = []
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            rows.append(_decode_row(line))
        except msgspec.DecodeError as exc:  # a ValidationError (not an object) too
            warnings.warn(
                SkippedLine(f"{path}: line {number} is not valid JSON ({exc}); skipped"),
                stacklevel=3,
            )
    if torn.strip():
        # Undecodable: the last write was interrupted, and that row was never acknowledged.
        with contextlib.suppress(msgspec.DecodeError):
            rows.append(_decode(torn))
    return rows


def last_rows(path: str | os.PathLike[str], max_bytes: int = _TAIL_CHUNK) -> list[dict[str, Any]]:
    """The complete rows in the last ``max_bytes`` of a JSONL file (cheap on huge files)."""
    p = _metrics_path(path, "metrics.jsonl")
    try:
        with open(p, "rb") as fh:
            size = fh.seek(0, os.SEEK_END)
            start = max(0, size - max_bytes)
            fh.seek(start)
            tail = fh.read()
    except FileNotFoundError:
        return []
    lines = tail.split(b"\n")
    if start > 0:
        lines = lines[1:]  # the first line is probably cut by the seek
    rows = []
    for line in lines:
        if line.strip():
            try:
                rows.append(_decode(line))
            except msgspec.DecodeError:
                continue  # a torn line at either end of the window
    return rows


def read_meta(run_dir: str | os.PathLike[str]) -> dict[str, Any] | None:
    """A run's ``meta.json`` as a dict, or None when the run has none yet."""
    try:
        data = (Path(run_dir) / "meta.json").read_bytes()
    except FileNotFoundError:
        return None
    meta: dict[str, Any] = _decode(data)
    return meta


def write_meta(run_dir: str | os.PathLike[str], meta: dict[str, Any]) -> None:
    """Write ``meta.json`` atomically (temp file + rename): readers never see half a file.

    Keys already on disk that ``meta`` does not mention are kept, and ``summary`` merges,
    so a worker recording a job's end keeps what the tracked script stored there."""
    path = Path(run_dir) / "meta.json"
    try:
        current: dict[str, Any] = _decode(path.read_bytes())
    except (FileNotFoundError, msgspec.DecodeError):
        current = {}
    merged = {**current, **meta}
    old_summary, new_summary = current.get("summary"), meta.get("summary")
    if isinstance(old_summary, dict) and isinstance(new_summary, dict):
        merged["summary"] = {**old_summary, **new_summary}
    elif old_summary and not new_summary:
        merged["summary"] = old_summary
    tmp = path.with_name(f".meta.json.{os.getpid()}.{id(meta)}.tmp")
    write_private(tmp, msgspec.json.format(_json.encode(merged), indent=2))  # 0600 when new
    os.replace(tmp, path)
