"""Analytics: read-only questions over runs and their metrics (``compare``, ``export``,
``sql``, ``runs --where``).

DuckDB reads the per-run ``metrics.jsonl``/``system.jsonl`` files (through a Parquet cache
for finished runs) and the runs/jobs views, and writes every output itself (``COPY``);
nothing here appends to the event log. Polars is an alternative shaper for the long table
of a Parquet metrics export (:mod:`.frames`, ``engine="polars"``). Both are imported inside
the functions that need them, never at module level, so ``import whirr`` and the other
commands stay fast.

Entry points: :func:`whirr.analytics.compare.compare_runs`,
:func:`whirr.analytics.export.export_runs`, :func:`whirr.analytics.export.export_metrics`,
:func:`whirr.analytics.query.run_sql`, :func:`whirr.analytics.filters.filter_runs`.
"""
