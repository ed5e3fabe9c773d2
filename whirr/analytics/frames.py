"""Polars' part of ``whirr export --metrics``: the long table of a large export, shaped and
written as Parquet.

DuckDB still reads the files and sorts the wide rows (run by run, ``_idx`` order); the rows
reach Polars through the Arrow C stream interface (zero-copy, no pyarrow import). Polars
turns them into the long table in that order without sorting again (an unpivot, then a
gather that interleaves the metrics), and writes Parquet. For a large export that saves
more than ``import polars`` (~0.4 s) costs over DuckDB's ``UNPIVOT ... ORDER BY`` then
``COPY`` (measured on tools/bench/analytics.py's 2.1 million rows: 0.6-0.9 s); for a small
one the import costs more than the whole export, so :mod:`whirr.analytics.export` keeps
DuckDB there (see ``POLARS_MIN_BYTES``).

CSV and JSON stay DuckDB's (``COPY``) at every size: their float text is the contract
(Python's ``repr``: ``1e-05``), and Polars writes ``0.00001``/``1e-6`` instead.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

#: whirr's own columns of a long metrics row, ahead of ``metric`` and ``value``.
INDEX = ("run_id", "_idx", "_timestamp", "step")


class _ArrowStream:
    """Hands a DuckDB relation to Polars through ``__arrow_c_stream__`` only: Polars (and
    DuckDB) import pyarrow (~0.4 s more) when given the objects themselves."""

    def __init__(self, source: Any) -> None:
        self._source = source

    def __arrow_c_stream__(self, requested_schema: Any = None) -> Any:
        return self._source.__arrow_c_stream__(requested_schema)


def write_long_parquet(relation: Any, metrics: list[str], target: Path) -> int:
    """Write the long table of ``relation`` (``INDEX`` columns then one DOUBLE column per
    name in ``metrics``, rows already in output order) to ``target`` as Parquet: one row
    per non-null value, each wide row's values in ``metrics`` order. Returns the row count.
    """
    import polars as pl

    wide = pl.DataFrame(_ArrowStream(relation))
    rows, k = wide.height, len(metrics)
    # unpivot stacks metric by metric (all of the first, then all of the second...); the
    # gather picks row r's value of metric m, at r * k + m, from m * rows + r.
    long = wide.unpivot(metrics, index=list(INDEX), variable_name="metric", value_name="value")
    pos = pl.int_range(rows * k, dtype=pl.UInt64, eager=True)
    long = long[(pos % k) * rows + pos // k].filter(pl.col("value").is_not_null())
    # Snappy, as DuckDB's COPY writes it: half the time of Polars' default zstd here.
    long.write_parquet(target, compression="snappy")
    return long.height
