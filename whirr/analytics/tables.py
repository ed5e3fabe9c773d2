"""The tables analytics queries see, registered on a DuckDB connection:

- ``runs`` and ``jobs``: the store's views, one row each, ``config``/``summary`` as structs
  (so ``config.lr`` works in SQL) typed over every run;
- ``_metrics``/``_system``: every line of the chosen runs' segments, with ``run_id`` and
  ``_run_pos`` (the run's position in the request, for ordering), read from the Parquet
  cache for finished runs and from the JSONL otherwise.

The store's views reach DuckDB as newline-delimited JSON in a private temporary file,
read with explicit columns: that is the fastest way in without pandas or Arrow.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import msgspec

from whirr.analytics.cache import SegmentCache
from whirr.analytics.detect import detect_columns
from whirr.analytics.schema import (
    JSON,
    VARCHAR,
    Type,
    infer,
    merge_columns,
    quote_ident,
    quote_str,
    sql_type,
)
from whirr.analytics.segment import KEYS, Segment, json_options, locate
from whirr.facade.protocol import Whirr
from whirr.projections import JobView, RunView
from whirr.wire import schemas

_encode = msgspec.json.Encoder().encode
#: whirr's own columns of a metrics row, in output order.
FIXED = {"metrics": ("_idx", "_timestamp", "step"), "system": ("_timestamp",)}
_FIXED_TYPES = {"_idx": "BIGINT", "_timestamp": "VARCHAR", "step": "BIGINT"}
#: Smaller files are read from the JSONL every time: writing thousands of tiny Parquet
#: copies costs more than it saves (measured: tools/bench/analytics.py).
CACHE_MIN_BYTES = 64 * 1024


@dataclass(frozen=True)
class RowsInfo:
    """What a registered runs or jobs table holds: its config and summary structure."""

    config: Type
    summary: Type


def register_runs(
    con: Any, tmpdir: Path, runs: Sequence[RunView] | Sequence[schemas.Run], name: str = "runs"
) -> RowsInfo:
    """Create table ``name`` from ``runs``."""
    config, summary = _struct_type(r.config for r in runs), _struct_type(r.summary for r in runs)
    columns = {
        "id": "VARCHAR",
        "name": "VARCHAR",
        "job_id": "BIGINT",
        "status": "VARCHAR",
        "tags": "VARCHAR[]",
        "hostname": "VARCHAR",
        "pid": "BIGINT",
        "started_at": "TIMESTAMPTZ",
        "finished_at": "TIMESTAMPTZ",
        "exit_code": "BIGINT",
        "error": "VARCHAR",
        "run_dir": "VARCHAR",
        "config": sql_type(config),
        "summary": sql_type(summary),
        "git": JSON,
        "archived": "BOOLEAN",
    }
    path = _write_rows(tmpdir, name, (_encode(run) for run in runs))
    # Whole microseconds, then one division: the same float as Python's total_seconds().
    duration = "(epoch_us(finished_at) - epoch_us(started_at)) / 1e6"
    con.execute(
        f"CREATE OR REPLACE TABLE {quote_ident(name)} AS SELECT id, name, job_id, status, "
        f"tags, hostname, pid, started_at, finished_at, {duration} AS duration_seconds, "
        "exit_code, error, run_dir, config, summary, git, archived "
        f"FROM read_json(?, columns=?, {json_options()})",
        [str(path), columns],
    )
    os.unlink(path)
    return RowsInfo(config, summary)


def register_jobs(
    con: Any, tmpdir: Path, jobs: Sequence[JobView] | Sequence[schemas.Job], name: str = "jobs"
) -> None:
    """Create table ``name`` from ``jobs`` (state flattened into plain columns)."""
    config = _struct_type(j.config for j in jobs)
    columns = {
        "id": "BIGINT",
        "name": "VARCHAR",
        "status": "VARCHAR",
        "command_argv": "VARCHAR[]",
        "workdir": "VARCHAR",
        "tags": "VARCHAR[]",
        "run_id": "VARCHAR",
        "parent_job_id": "BIGINT",
        "attempt": "BIGINT",
        "max_attempts": "BIGINT",
        "priority": "BIGINT",
        "worker_id": "VARCHAR",
        "created_at": "TIMESTAMPTZ",
        "started_at": "TIMESTAMPTZ",
        "finished_at": "TIMESTAMPTZ",
        "exit_code": "BIGINT",
        "error": "VARCHAR",
        "cancel_requested": "BOOLEAN",
        "config": sql_type(config),
    }
    rows = (
        _encode(
            {
                "id": j.id,
                "name": j.name,
                "status": j.status,
                "command_argv": j.command_argv,
                "workdir": j.workdir,
                "tags": j.tags,
                "run_id": j.run_id,
                "parent_job_id": j.parent_job_id,
                "attempt": j.attempt,
                "max_attempts": j.max_attempts,
                "priority": j.priority,
                "worker_id": j.worker_id,
                "created_at": j.created_at,
                "started_at": j.started_at,
                "finished_at": j.finished_at,
                "exit_code": j.exit_code,
                "error": j.error,
                "cancel_requested": j.cancel_requested,
                "config": j.config,
            }
        )
        for j in jobs
    )
    path = _write_rows(tmpdir, name, rows)
    con.execute(
        f"CREATE OR REPLACE TABLE {quote_ident(name)} AS "
        f"SELECT * FROM read_json(?, columns=?, {json_options()})",
        [str(path), columns],
    )
    os.unlink(path)


def _struct_type(values: Iterable[dict[str, Any]]) -> Type:
    t = infer(values)
    return t if isinstance(t, dict) and t else {}


def _write_rows(tmpdir: Path, name: str, rows: Iterable[bytes]) -> Path:
    path = tmpdir / f"{name}.jsonl"
    with open(path, "wb") as fh:
        for row in rows:
            fh.write(row)
            fh.write(b"\n")
    return path


@dataclass(frozen=True)
class SegmentTable:
    """A registered view of segment rows and the value columns (user keys) it has."""

    name: str
    kind: str
    columns: dict[str, Type]
    #: Bytes of the runs' JSONL files: what a reader of the view has to get through.
    size: int = 0


def register_segments(
    con: Any, whirr: Whirr, runs: Sequence[schemas.Run], kind: str
) -> SegmentTable:
    """Create view ``_<kind>`` over the ``kind`` segments of ``runs``: ``run_id``,
    ``_run_pos``, whirr's own columns, then every user key (union over the runs)."""
    segments = locate(whirr, runs, kind)
    cache = SegmentCache(whirr.cache_dir / kind) if whirr.cache_dir is not None else None
    parquet: dict[str, Path] = {}
    pending: list[Segment] = []
    for seg in segments:
        hit = cache.lookup(seg) if seg.finished and cache is not None else None
        if hit is not None:
            parquet[seg.run_id] = hit
        else:
            pending.append(seg)
    detected = detect_columns(con, pending)
    worth = [s for s in pending if s.finished and s.size >= CACHE_MIN_BYTES]
    if cache is not None:
        parquet.update(cache.fill(con, worth, detected))
    jsonl = [s for s in pending if s.run_id not in parquet]
    json_cols = merge_columns(detected.get(s.path, {}) for s in jsonl)
    all_cols = merge_columns([_parquet_columns(con, list(parquet.values())), json_cols])
    fixed = FIXED[kind]
    values = {k: t for k, t in all_cols.items() if k not in fixed}

    position = {run.id: pos for pos, run in enumerate(runs)}
    files = [(str(p), rid) for rid, p in parquet.items()] + [(str(s.path), s.run_id) for s in jsonl]
    view = f"_{kind}"
    con.execute(
        f"CREATE OR REPLACE TEMP TABLE {view}_files AS SELECT unnest(?::VARCHAR[]) AS filename, "
        "unnest(?::VARCHAR[]) AS run_id, unnest(?::BIGINT[]) AS _run_pos",
        [[f for f, _ in files], [r for _, r in files], [position[r] for _, r in files]],
    )
    sources = []
    if parquet:
        sources.append(
            f"SELECT * FROM read_parquet({_list([str(p) for p in parquet.values()])}, "
            "union_by_name=true, filename=true)"
        )
    if jsonl:
        sources.append(_jsonl_source([str(s.path) for s in jsonl], json_cols))
    select = ", ".join(
        f"s.{quote_ident(k)}" if k in all_cols else f"NULL::{_FIXED_TYPES[k]} AS {k}" for k in fixed
    )
    select += "".join(f", s.{quote_ident(k)}" for k in values)
    # Views cannot take parameters, so file names and column names are inlined as quoted
    # literals (quote_str / quote_ident); none of it comes from the command line.
    if sources:
        body = (
            f"SELECT f.run_id, f._run_pos, {select} FROM ({' UNION ALL BY NAME '.join(sources)})"
            f" s JOIN {view}_files f USING (filename) WHERE s.{KEYS[kind]} IS NOT NULL"
        )
    else:
        empty = ", ".join(f"NULL::{_FIXED_TYPES[k]} AS {k}" for k in fixed)
        body = f"SELECT NULL::VARCHAR AS run_id, NULL::BIGINT AS _run_pos, {empty} WHERE false"
    con.execute(f"CREATE OR REPLACE TEMP VIEW {view} AS {body}")
    return SegmentTable(view, kind, values, sum(s.size for s in segments))


def _jsonl_source(files: list[str], columns: dict[str, Type]) -> str:
    """A SELECT of ``filename`` and ``columns`` from every line of ``files``.

    Each line is read as one JSON object (``read_json_objects``) and cast to the columns by
    ``json_transform``: the same values, types and torn-line nulls as ``read_json`` with
    explicit ``columns``, at a third of its cost over many small files (``read_json``
    spends ~0.4 ms setting up each file; 2,000 runs of 20 lines: 0.2 s against 0.6-1.1 s).
    """
    if not columns:
        return (
            f"SELECT filename FROM read_json_objects({_list(files)}, {json_options()}, "
            "filename=true)"
        )
    structure = _encode({k: sql_type(t, "DOUBLE") for k, t in columns.items()}).decode()
    return (
        f"SELECT filename, unnest(json_transform(json, {quote_str(structure)})) "
        f"FROM read_json_objects({_list(files)}, {json_options()}, filename=true)"
    )


def _parquet_columns(con: Any, paths: list[Path]) -> dict[str, Type]:
    if not paths:
        return {}
    rows = con.execute(
        f"DESCRIBE SELECT * FROM read_parquet({_list([str(p) for p in paths])}, union_by_name=true)"
    ).fetchall()
    known = {"BIGINT", "DOUBLE", "BOOLEAN", "VARCHAR", "JSON"}
    return {name: (t if t in known else VARCHAR) for name, t, *_ in rows}


def _list(items: list[str]) -> str:
    return "[" + ", ".join(quote_str(i) for i in items) + "]"
