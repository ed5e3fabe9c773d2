"""Run files under the server's data dir, reached only through checked paths.

A run id or artifact path comes from the network, so each is validated by shape first
and then resolved (symlinks included) and checked to lie inside the data dir: neither
``../`` nor an absolute path nor a symlink planted in a run directory can reach outside.
"""

from __future__ import annotations

import os
import re
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import msgspec

from whirr.api.schemas import ArtifactOut
from whirr.services.errors import InvalidRequest, NotFound

#: What a run id may look like: ``job-12``, ``local-20240101-120000-abcdef``.
RUN_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,199}")
_decode_row = msgspec.json.Decoder(dict[str, Any]).decode


def check_run_id(run_id: str) -> str:
    """``run_id`` if it is shaped like one (422 otherwise: it could name another path)."""
    if not RUN_ID.fullmatch(run_id) or ".." in run_id:
        raise InvalidRequest(f"invalid run id {run_id!r}")
    return run_id


def run_dir(runs_dir: Path, run_id: str) -> Path:
    """The directory of ``run_id`` under ``runs_dir`` (which need not exist yet)."""
    path = runs_dir / check_run_id(run_id)
    base = runs_dir.resolve()
    if not _inside(path.resolve(), base):
        raise InvalidRequest(f"invalid run id {run_id!r}")
    return path


def artifact_file(runs_dir: Path, run_id: str, rel: str) -> Path:
    """The artifact file ``rel`` of a run; 422 for paths that try to leave the run's
    ``artifacts/`` directory, 404 for files that are not there."""
    if not rel or "\x00" in rel or rel.startswith(("/", "\\")) or len(rel) > 4096:
        raise InvalidRequest(f"invalid artifact path {rel!r}")
    parts = rel.replace("\\", "/").split("/")
    if any(part in ("..", "") for part in parts):
        raise InvalidRequest(f"invalid artifact path {rel!r}")
    base = run_dir(runs_dir, run_id) / "artifacts"
    path = base.joinpath(*parts)
    try:
        resolved = path.resolve(strict=True)
    except (OSError, RuntimeError):
        raise NotFound(f"run {run_id} has no artifact {rel!r}") from None
    if not _inside(resolved, base.resolve()):
        raise InvalidRequest(f"invalid artifact path {rel!r}")
    if not resolved.is_file():
        raise NotFound(f"run {run_id} has no artifact {rel!r}")
    return resolved


def list_artifacts(runs_dir: Path, run_id: str) -> list[ArtifactOut]:
    """Every regular file under the run's ``artifacts/`` directory, sorted by path.
    Symlinks are not followed: they could point anywhere."""
    base = run_dir(runs_dir, run_id) / "artifacts"
    found: list[ArtifactOut] = []
    for root, dirs, files in os.walk(base, followlinks=False):
        dirs.sort()
        for name in sorted(files):
            full = Path(root) / name
            try:
                st = full.lstat()
            except OSError:
                continue
            if not full.is_symlink() and full.is_file():
                found.append(
                    ArtifactOut(
                        path=full.relative_to(base).as_posix(),
                        size=st.st_size,
                        modified=datetime.fromtimestamp(st.st_mtime, UTC),
                    )
                )
    return found


def read_metric_rows(runs_dir: Path, run_id: str, since: int, limit: int) -> list[dict[str, Any]]:
    """Rows of the run's ``metrics.jsonl`` with ``_idx >= since``, at most ``limit``.
    A torn or garbled line (a writer killed mid-write) is skipped, never an error."""
    path = run_dir(runs_dir, run_id) / "metrics.jsonl"
    rows: list[dict[str, Any]] = []
    try:
        fh = path.open("rb")
    except FileNotFoundError:
        return rows
    with fh:
        for line in fh:
            if not line.endswith(b"\n"):
                break  # the last line is still being written
            try:
                row = _decode_row(line)
            except msgspec.DecodeError:
                continue
            idx = row.get("_idx")
            if isinstance(idx, int) and idx < since:
                continue
            rows.append(row)
            if len(rows) >= limit:
                break
    return rows


def read_from(path: Path, offset: int, max_bytes: int) -> bytes:
    """Up to ``max_bytes`` of ``path`` from ``offset`` (empty when it does not exist)."""
    try:
        with path.open("rb") as fh:
            fh.seek(offset)
            return fh.read(max_bytes)
    except FileNotFoundError:
        return b""


def _inside(path: Path, base: Path) -> bool:
    return path == base or path.is_relative_to(base)
