"""``whirr sql``: any DuckDB query over the views ``runs``, ``jobs``, ``metrics`` and
``system``. Only the views a query names are built, so ``SELECT count(*) FROM runs`` never
opens a metrics file."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from whirr.analytics.errors import AnalyticsError
from whirr.analytics.session import Session
from whirr.analytics.tables import register_jobs
from whirr.facade.protocol import Whirr

VIEWS = ("runs", "jobs", "metrics", "system")
#: What ``whirr sql`` runs: queries. COPY, ATTACH, INSTALL, SET and the like are refused
#: before anything runs, and the connection is locked to the views' own files besides.
READ_ONLY = ("SELECT", "EXPLAIN")


@dataclass(frozen=True)
class Result:
    """A query's column names and rows."""

    columns: list[str]
    rows: list[tuple[Any, ...]]


def check_read_only(sql: str) -> None:
    """``AnalyticsError`` unless every statement of ``sql`` only reads (``READ_ONLY``)."""
    import duckdb

    try:
        statements = duckdb.extract_statements(sql)
    except duckdb.Error as exc:
        raise AnalyticsError(str(exc).strip()) from None
    for statement in statements:
        kind = statement.type.name
        if kind not in READ_ONLY:
            raise AnalyticsError(
                f"whirr sql only reads: {kind} statements are refused (use whirr export "
                "to write files)"
            )


def referenced(sql: str) -> set[str]:
    """Which of whirr's views ``sql`` names (DuckDB's parser decides, not a regex)."""
    import duckdb

    try:
        names = duckdb.get_table_names(sql)
    except duckdb.Error as exc:
        raise AnalyticsError(str(exc).strip()) from None
    return {n.lower() for n in names} & set(VIEWS)


def run_sql(whirr: Whirr, sql: str) -> Result:
    """Run ``sql`` over the runs, jobs and run files of ``whirr`` (a project or a server)
    and return its result. DuckDB's message is the error for bad SQL.

    ``metrics`` and ``system`` have ``run_id``, whirr's own columns (``_timestamp`` as a
    UTC timestamp) and one column per key any run logged.
    """
    if not sql.strip():
        raise AnalyticsError('give a query, e.g. whirr sql "SELECT * FROM runs"')
    check_read_only(sql)
    names = referenced(sql)
    with Session(whirr) as session:
        if names - {"jobs"}:
            # Live statuses, as `whirr runs` shows them; archived runs too (column archived).
            runs = whirr.runs(limit=None, archived="include")
            if "runs" in names:
                session.runs_table(runs)
            for kind in ("metrics", "system"):
                if kind in names:
                    table = session.segments(runs, kind)
                    session.execute(
                        f"CREATE TEMP VIEW {kind} AS SELECT * EXCLUDE (_run_pos) REPLACE "
                        f"(TRY_CAST(_timestamp AS TIMESTAMPTZ) AS _timestamp) FROM {table.name}"
                    )
        if "jobs" in names:
            register_jobs(session.con, session.tmpdir, whirr.jobs(None, None))
        session.lock()
        result = session.execute(sql)
        if result.description is None:
            return Result([], [])
        columns = [d[0] for d in result.description]
        import duckdb

        try:
            rows = result.fetchall()
        except duckdb.Error as exc:  # a conversion error found while fetching
            raise AnalyticsError(str(exc).strip()) from None
    return Result(columns, rows)
