"""``whirr runs --where/--sort``: filter and order runs by config and summary values, the
expressions evaluated by DuckDB over the ``runs`` table (see ``tables.register_runs``)."""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import TypeVar

from whirr.analytics.errors import AnalyticsError
from whirr.analytics.session import Session
from whirr.projections import RunView
from whirr.wire import schemas

#: A run as the store projects it or as the wire carries it: filtering needs only its
#: fields.
R = TypeVar("R", RunView, schemas.Run)

_DESC = re.compile(r"\s+desc\s*$", re.IGNORECASE)
_ASC = re.compile(r"\s+asc\s*$", re.IGNORECASE)


def sort_clause(sort: str) -> str:
    """One ORDER BY term from ``key``, ``-key``, ``key desc`` or ``key asc``.

    Runs missing the key go last either way: a run that never reported ``best_loss`` is
    not the best.
    """
    text = sort.strip()
    descending = False
    if text.startswith("-"):
        text, descending = text[1:].strip(), True
    elif _DESC.search(text):
        text, descending = _DESC.sub("", text), True
    else:
        text = _ASC.sub("", text)
    if not text:
        raise AnalyticsError(f"--sort {sort!r} names nothing to sort by")
    return f"({text}) {'DESC' if descending else 'ASC'} NULLS LAST"


def filter_runs(
    runs: Sequence[R],
    where: Sequence[str] = (),
    sort: Sequence[str] = (),
    limit: int | None = None,
) -> list[R]:
    """Those of ``runs`` matching every ``where`` expression (SQL over the ``runs`` table:
    ``config.lr < 0.01``, ``summary.best_loss IS NOT NULL``, ``name LIKE 'sweep%'``),
    ordered by each ``sort`` term then newest first, at most ``limit``.

    The expressions run with DuckDB's external access turned off, so a filter can read the
    runs table and nothing else. Statuses are taken from ``runs`` as given (the caller's
    live view), not re-read.
    """
    runs = list(runs)
    if not runs:
        return []
    with Session() as session:
        session.runs_table(runs)
        session.con.execute("SET enable_external_access = false")
        session.con.execute("SET lock_configuration = true")
        conditions = " AND ".join(f"({w})" for w in where) or "true"
        order = ", ".join([*(sort_clause(s) for s in sort), "started_at DESC"])
        sql = f"SELECT id FROM runs WHERE {conditions} ORDER BY {order}"
        _one_statement(session, sql, where, sort)
        params = []
        if limit is not None:
            sql += " LIMIT ?"
            params.append(limit)
        ids = [row[0] for row in session.execute(sql, params).fetchall()]
    by_id = {run.id: run for run in runs}
    return [by_id[i] for i in ids]


def _one_statement(session: Session, sql: str, where: Sequence[str], sort: Sequence[str]) -> None:
    """Refuse a filter that smuggles in a second statement (``1=1; DROP ...``)."""
    import duckdb

    try:
        statements = duckdb.extract_statements(sql)
    except duckdb.Error as exc:
        raise AnalyticsError(f"bad --where/--sort: {str(exc).strip()}") from None
    if len(statements) != 1:
        given = "; ".join([*where, *sort])
        raise AnalyticsError(f"--where and --sort take one expression each, not {given!r}")
