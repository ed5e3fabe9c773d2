"""A run's JSONL segment (``metrics.jsonl`` or ``system.jsonl``): where it is, what columns
it holds, and the explicit options DuckDB reads it with."""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import msgspec

from whirr.analytics.schema import BIGINT, VARCHAR, Type, flat, from_structure
from whirr.projections import RunView

#: The column that every whole line has; a row without it is a torn last line.
KEYS = {"metrics": "_idx", "system": "_timestamp"}
#: Statuses of a run whose files can still grow.
LIVE_STATUSES = frozenset({"running"})


@dataclass(frozen=True)
class Segment:
    """One run's file of one kind, with the stamp (size, mtime) it had when looked at."""

    run_id: str
    kind: str
    path: Path
    size: int
    mtime_ns: int
    finished: bool

    @property
    def key(self) -> str:
        """The column present on every whole line."""
        return KEYS[self.kind]


def json_options() -> str:
    """The ``read_json`` options whirr always spells out (see the module docstring of
    ``schema``): one object per line, and a torn last line skipped rather than fatal."""
    return "format='newline_delimited', ignore_errors=true, maximum_object_size=67108864"


def locate(runs_dir: Path, runs: Iterable[RunView], kind: str) -> list[Segment]:
    """The non-empty ``<kind>.jsonl`` of each run, in the order of ``runs``.

    The project's ``runs/<id>/`` comes first; the directory the run recorded is the
    fallback (a run tracked outside the project tree).
    """
    found: list[Segment] = []
    for run in runs:
        for directory in (runs_dir / run.id, Path(run.run_dir) if run.run_dir else None):
            if directory is None:
                continue
            path = directory / f"{kind}.jsonl"
            try:
                st = os.stat(path)
            except OSError:
                continue
            if st.st_size:
                finished = run.status not in LIVE_STATUSES
                found.append(Segment(run.id, kind, path, st.st_size, st.st_mtime_ns, finished))
            break
    return found


_decode_structure = msgspec.json.Decoder().decode


def detect_columns(con: Any, segments: Sequence[Segment]) -> dict[Path, dict[str, Type]]:
    """Each file's columns and types, merged over every line (not a sample).

    ``_idx`` and ``step`` are integers and ``_timestamp`` stays text, whatever a damaged line
    says: they are whirr's own keys, and keeping ``_timestamp`` as written keeps exports
    exact.
    """
    if not segments:
        return {}
    files = [str(seg.path) for seg in segments]
    rows = con.execute(
        "SELECT filename, json_group_structure(json) FROM read_json_objects("
        f"?, {json_options()}, filename=true) GROUP BY filename",
        [files],
    ).fetchall()
    out: dict[Path, dict[str, Type]] = {}
    for filename, structure in rows:
        node = _decode_structure(structure) if structure else {}
        cols = {str(k): flat(from_structure(v)) for k, v in node.items()} if isinstance(
            node, dict
        ) else {}
        if "_idx" in cols:
            cols["_idx"] = BIGINT
        if "_timestamp" in cols:
            cols["_timestamp"] = VARCHAR
        if cols.get("step") not in (None, BIGINT):
            cols["step"] = VARCHAR if cols["step"] != "DOUBLE" else "DOUBLE"
        out[Path(filename)] = cols
    return out
