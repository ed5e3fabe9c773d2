"""A Parquet copy of each finished run's JSONL segment: a projection, never the truth.

Layout: ``.whirr/cache/<kind>/<run_id>.<size>.<mtime_ns>.parquet``. The stamp is the JSONL
file's size and modification time when the copy was made, so a copy whose JSONL changed
since (a resumed run appending, a repaired file) no longer matches and is rebuilt; the
older copy is then deleted. Only finished runs are cached: a running run's file grows.

Copies are written to a private temporary name and renamed into place, so a reader (or
a second whirr building the same copy at the same time) never sees half a file. When the
cache cannot be written (read-only project, disk full), reads fall back to the JSONL.
"""

from __future__ import annotations

import contextlib
import os
import shutil
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from whirr.analytics.schema import Type, quote_str, sql_type
from whirr.analytics.segment import PARQUET_OPTIONS, Segment, json_options
from whirr.filemodes import private_dir


class SegmentCache:
    """The Parquet copies of one kind of segment (``metrics`` or ``system``)."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self._index: dict[str, list[str]] | None = None

    def _names(self) -> dict[str, list[str]]:
        """Cached file names by run id (one directory listing per command)."""
        if self._index is None:
            index: dict[str, list[str]] = {}
            try:
                names = os.listdir(self.root)
            except OSError:
                names = []
            for name in names:
                parts = name.rsplit(".", 3)
                if len(parts) == 4 and parts[3] == "parquet":
                    index.setdefault(parts[0], []).append(name)
            self._index = index
        return self._index

    def lookup(self, seg: Segment) -> Path | None:
        """The copy of ``seg`` when one matches its current stamp."""
        name = _file_name(seg)
        return self.root / name if name in self._names().get(seg.run_id, ()) else None

    def fill(
        self, con: Any, segments: Sequence[Segment], columns: Mapping[Path, dict[str, Type]]
    ) -> dict[str, Path]:
        """Write copies of ``segments`` (each read with its own ``columns``); returns the
        copies made by run id. Segments that could not be copied are left out."""
        import duckdb

        # One COPY per distinct schema rather than per run: a sweep's 2,000 runs usually
        # share one, and a statement per small file would cost more than reading them.
        groups: dict[tuple[tuple[str, str], ...], list[Segment]] = {}
        for seg in segments:
            cols = columns.get(seg.path)
            if cols:
                signature = tuple((k, sql_type(t, "DOUBLE")) for k, t in cols.items())
                groups.setdefault(signature, []).append(seg)
        made: dict[str, Path] = {}
        try:
            private_dir(self.root)  # 0700 (whirr.filemodes): copies of runs' metrics
            for signature, group in groups.items():
                made.update(self._copy(con, dict(signature), group))
        except (OSError, duckdb.IOException, duckdb.PermissionException):
            pass  # a cache we cannot write is no error: the JSONL stays readable
        finally:
            self._index = None
        return made

    def _copy(self, con: Any, cols: dict[str, str], group: list[Segment]) -> dict[str, Path]:
        tmp = self.root / f".tmp-{os.getpid()}-{id(group)}"
        files = [str(seg.path) for seg in group]
        key = group[0].key
        # COPY ... TO takes its path as a literal, never a parameter; quote_str escapes it.
        # A join, not list_position(files, filename): that would scan the file list once
        # per row, a million rows times two thousand files.
        con.execute(
            "CREATE OR REPLACE TEMP TABLE _cache_parts AS SELECT unnest(?::VARCHAR[]) AS "
            "filename, unnest(range(1, ?::BIGINT + 1)) AS _part",
            [files, len(files)],
        )
        source = (
            f"SELECT j.* EXCLUDE (filename), p._part FROM read_json(?, columns=?, "
            f"{json_options()}, filename=true) j JOIN _cache_parts p USING (filename) "
            f"WHERE j.{key} IS NOT NULL"
        )
        try:
            con.execute(
                f"COPY ({source}) TO {quote_str(str(tmp))} "
                f"({PARQUET_OPTIONS}, PARTITION_BY (_part), OVERWRITE_OR_IGNORE)",
                [files, cols],
            )
            made: dict[str, Path] = {}
            for number, seg in enumerate(group, 1):
                part = tmp / f"_part={number}"
                written = sorted(part.glob("*.parquet")) if part.is_dir() else []
                if len(written) != 1:
                    continue  # no valid rows (only a torn line), or split: read the JSONL
                target = self.root / _file_name(seg)
                os.replace(written[0], target)
                self._drop_stale(seg, target.name)
                made[seg.run_id] = target
            return made
        finally:
            shutil.rmtree(tmp, ignore_errors=True)

    def _drop_stale(self, seg: Segment, keep: str) -> None:
        for name in self._names().get(seg.run_id, ()):
            if name != keep:
                with contextlib.suppress(OSError):  # another whirr removed it first
                    os.unlink(self.root / name)


def _file_name(seg: Segment) -> str:
    return f"{seg.run_id}.{seg.size}.{seg.mtime_ns}.parquet"
