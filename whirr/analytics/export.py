"""``whirr export``: runs (with flattened ``config.*``/``summary.*`` columns) or every
logged metric row, to CSV, JSON, JSON lines or Parquet. DuckDB writes the file itself
(``COPY``), so a million metric rows never pass through Python. Polars can shape and write
the long metrics table as Parquet instead (``engine="polars"``, :mod:`.frames`); the file
holds the same rows."""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Literal

from whirr.analytics.errors import AnalyticsError
from whirr.analytics.schema import NUMERIC, Type, leaves, quote_ident, quote_str
from whirr.analytics.segment import PARQUET_OPTIONS
from whirr.analytics.session import Session
from whirr.wire import schemas

FORMATS = ("csv", "json", "jsonl", "parquet")
SUFFIXES = {
    ".csv": "csv",
    ".json": "json",
    ".jsonl": "jsonl",
    ".ndjson": "jsonl",
    ".parquet": "parquet",
    ".pq": "parquet",
}
_COPY_OPTIONS = {
    "csv": "FORMAT csv, HEADER true",
    "json": "FORMAT json, ARRAY true",
    "jsonl": "FORMAT json",
    "parquet": PARQUET_OPTIONS,
}
#: Timestamps as the files write them; Parquet keeps a real timestamp type instead.
_ISO = "'%Y-%m-%dT%H:%M:%S.%fZ'"
#: Who shapes a long Parquet export; ``auto`` is DuckDB. Measured on the benchmark's 2.1
#: million long rows (tools/bench/analytics.py), DuckDB's sort-then-unnest and Polars'
#: unpivot-and-gather cost the same CPU (1.4-1.5 s), and Polars adds its import (~0.4 s).
Engine = Literal["auto", "duckdb", "polars"]


def format_for(path: str | None, fmt: str | None) -> str:
    """The output format: ``fmt`` when given, else from the path's suffix, else CSV."""
    if fmt:
        return fmt
    if path:
        found = SUFFIXES.get(Path(path).suffix.lower())
        if found is None:
            known = ", ".join(sorted(SUFFIXES))
            raise AnalyticsError(f"cannot tell the format of {path!r} ({known}); give -f")
        return found
    return "csv"


def export_runs(session: Session, runs: Sequence[schemas.Run], fmt: str, target: Path) -> int:
    """Write ``runs`` (in the given order) to ``target``; returns the row count."""
    # DuckDB flattens here, not Polars: a few thousand rows take DuckDB ~50 ms, less than
    # `import polars` alone (~0.4 s), and the benchmark's target is 2x a bare DuckDB.
    info = session.runs_table(list(runs))
    timestamp = (lambda c: c) if fmt == "parquet" else (lambda c: f"strftime({c}, {_ISO})")
    tags = "tags" if fmt != "csv" else "array_to_string(tags, ',')"
    columns = [
        "id",
        "name",
        "job_id",
        "status",
        f"{tags} AS tags",
        "hostname",
        f"{timestamp('started_at')} AS started_at",
        f"{timestamp('finished_at')} AS finished_at",
        "duration_seconds",
        "exit_code",
        "error",
        *_flat_columns("config", info.config),
        *_flat_columns("summary", info.summary),
    ]
    query = f"SELECT {', '.join(columns)} FROM runs ORDER BY list_position(?, id)"
    return _copy(session, query, [[r.id for r in runs]], fmt, target)


def _flat_columns(name: str, t: Type) -> list[str]:
    out = []
    for path, _ in leaves(t):
        access = name + "".join(f"[{quote_str(p)}]" for p in path)
        out.append(f"{access} AS {quote_ident('.'.join((name, *path)))}")
    return out


def export_metrics(
    session: Session,
    runs: Sequence[schemas.Run],
    fmt: str,
    target: Path,
    wide: bool = False,
    metrics: Sequence[str] = (),
    engine: Engine = "auto",
) -> int:
    """Write every metric row of ``runs`` to ``target``, run by run in ``_idx`` order.

    Long (default): ``run_id, _idx, _timestamp, step, metric, value``, one row per numeric
    value (nulls, i.e. NaN/inf as logged, and text values are left out). Wide
    (``wide=True``): ``run_id, _idx, _timestamp, step`` then one column per key.

    ``engine`` shapes a long Parquet export: DuckDB (``auto``, ``duckdb``) or Polars
    (``polars``); the file holds the same rows either way. Every other export is DuckDB's.
    """
    table = session.segments(list(runs))
    if metrics:
        unknown = [m for m in metrics if m not in table.columns]
        if unknown:
            logged = ", ".join(table.columns) or "none"
            raise AnalyticsError(
                f"no exported run logged {', '.join(map(repr, unknown))} (logged: {logged})"
            )
        chosen = list(dict.fromkeys(metrics))
    else:
        chosen = list(table.columns)
    ts = "TRY_CAST(_timestamp AS TIMESTAMPTZ)" if fmt == "parquet" else "_timestamp"
    head = f"run_id, _idx, {ts} AS _timestamp, step"
    if wide:
        cols = "".join(f", {quote_ident(m)}" for m in chosen)
        query = f"SELECT {head}{cols} FROM _metrics ORDER BY _run_pos, _idx"
        return _copy(session, query, None, fmt, target)
    numeric = [m for m in chosen if table.columns[m] in NUMERIC]
    if metrics and len(numeric) < len(chosen):
        text = [m for m in chosen if m not in numeric]
        raise AnalyticsError(f"{', '.join(text)} are not numbers; export them with --wide")
    if not numeric:
        query = (
            f"SELECT {head}, NULL::VARCHAR AS metric, NULL::DOUBLE AS value "
            "FROM _metrics WHERE false"
        )
        return _copy(session, query, None, fmt, target)
    casts = ", ".join(f"CAST({quote_ident(m)} AS DOUBLE) AS {quote_ident(m)}" for m in numeric)
    if fmt == "parquet" and engine == "polars":
        from whirr.analytics.frames import write_long_parquet

        relation = session.relation(f"SELECT {head}, {casts} FROM _metrics ORDER BY _run_pos, _idx")
        return _atomic(target, lambda tmp: write_long_parquet(relation, numeric, tmp))
    # The wide rows are sorted once into a table (a million rows, not the long table's two
    # million), then each row is unnested into its metrics in ``numeric`` order: DuckDB
    # keeps a single table's row order through SELECT, unnest and WHERE into COPY, so the
    # long table needs no sort of its own.
    session.execute(
        f"CREATE OR REPLACE TEMP TABLE _long_rows AS SELECT {head}, {casts} FROM _metrics "
        "ORDER BY _run_pos, _idx"
    )
    names = ", ".join(quote_str(m) for m in numeric)
    values = ", ".join(quote_ident(m) for m in numeric)
    query = (
        "SELECT * FROM (SELECT run_id, _idx, _timestamp, step, "
        f"unnest([{names}]) AS metric, unnest([{values}]) AS value FROM _long_rows) "
        "WHERE value IS NOT NULL"
    )
    return _copy(session, query, None, fmt, target)


def _copy(session: Session, query: str, params: list | None, fmt: str, target: Path) -> int:
    """COPY ``query`` into ``target`` (see :func:`_atomic`)."""

    def write(tmp: Path) -> int:
        # COPY takes its path as a literal only; quote_str escapes it.
        result = session.execute(
            f"COPY ({query}) TO {quote_str(str(tmp))} ({_COPY_OPTIONS[fmt]})", params
        )
        count = result.fetchone()
        return int(count[0]) if count else 0

    return _atomic(target, write)


def check_replaceable(target: Path) -> None:
    """``AnalyticsError`` unless ``target`` is absent or a regular file."""
    import stat

    try:
        mode = target.lstat().st_mode
    except FileNotFoundError:
        return
    except OSError as exc:
        raise AnalyticsError(f"cannot write {target}: {exc.strerror}") from None
    if not stat.S_ISREG(mode):
        kind = (
            "a symlink"
            if stat.S_ISLNK(mode)
            else "a FIFO"
            if stat.S_ISFIFO(mode)
            else "a directory"
            if stat.S_ISDIR(mode)
            else "a device or special file"
        )
        raise AnalyticsError(
            f"refusing to replace {target}: it is {kind}, not a regular file "
            "(give a new file name, or leave out -o to write to stdout)"
        )


def _atomic(target: Path, write: Callable[[Path], int]) -> int:
    """``write`` to a temporary name next to ``target``, then rename it over ``target``, so
    a reader never sees a half-written file and a failed export leaves the old one.

    Only a regular file is replaced: renaming over a symlink, a FIFO or a device would
    put a file where the link, pipe or device was (as root, ``-o /dev/null``)."""
    check_replaceable(target)
    tmp = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    try:
        count = write(tmp)
        os.replace(tmp, target)
    finally:
        if tmp.exists():
            tmp.unlink()
    return count
