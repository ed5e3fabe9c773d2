"""The runs table's rows (runs flattened: ``config.<key>``, ``summary.<key>``) and, for a
dashboard of a remote server, every run in memory: filter by status, tag and text, sort
by any column (config and summary keys included), one page at a time.

A dashboard beside the store (a project, ``whirr server``) holds none of this: it asks the
store for each page (``ViewReader.runs_page``, issue 19: its memory does not grow with
the runs). A remote dashboard has only the server's API, so it keeps every run here and
refreshes only the runs that run events touched since its head.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import msgspec

from whirr.wire import schemas

RUN_EVENT_TYPES = ["run.started", "run.summary_updated", "run.artifact_saved", "run.finished"]
#: Columns every run has; the rest are ``config.<key>`` and ``summary.<key>``.
BASE_COLUMNS = ("id", "name", "status", "tags", "started_at", "duration", "job_id")
_json = msgspec.json.Encoder()


def flatten(value: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """``{"opt": {"lr": 1}}`` -> ``{"opt.lr": 1}``; lists become JSON text."""
    out: dict[str, Any] = {}
    for key, item in value.items():
        name = f"{prefix}{key}"
        if isinstance(item, dict) and item:
            out.update(flatten(item, f"{name}."))
        elif isinstance(item, list | dict):
            out[name] = _json.encode(item).decode()
        else:
            out[name] = item
    return out


@dataclass
class Row:
    """One run as the table shows it."""

    run: schemas.Run
    config: dict[str, Any]
    summary: dict[str, Any]
    text: str

    def value(self, column: str) -> Any:
        """The cell of ``column`` (None when the run has no such key)."""
        if column.startswith("config."):
            return self.config.get(column[7:])
        if column.startswith("summary."):
            return self.summary.get(column[8:])
        if column == "duration":
            return self.run.duration_seconds
        if column == "tags":
            return ",".join(self.run.tags)
        return getattr(self.run, column, None)

    def to_json(self) -> dict[str, Any]:
        """The row's JSON shape."""
        run = self.run
        return {
            "id": run.id,
            "name": run.name,
            "status": run.status,
            "tags": run.tags,
            "job_id": run.job_id,
            "started_at": run.started_at,
            "finished_at": run.finished_at,
            "duration": run.duration_seconds,
            "config": self.config,
            "summary": self.summary,
        }


def make_row(run: schemas.Run) -> Row:
    """Flatten a run into a table row."""
    text = " ".join([run.id, run.name or "", *run.tags, run.status]).lower()
    return Row(run, flatten(run.config), flatten(run.summary), text)


@dataclass
class Query:
    """What the runs table asks for."""

    text: str = ""
    status: str | None = None
    tag: str | None = None
    sort: str = "started_at"
    descending: bool = True
    offset: int = 0
    limit: int = 100


@dataclass
class RunsIndex:
    """All runs, newest first, with their config and summary columns."""

    head: int = 0
    loaded: bool = False
    rows: dict[str, Row] = field(default_factory=dict)
    _ordered: list[Row] | None = None
    _facts: dict[str, Any] | None = None

    def load(self, runs: list[schemas.Run], head: int) -> None:
        """Replace everything with ``runs`` as of log position ``head``."""
        self.rows = {r.id: make_row(r) for r in runs}
        self.head = head
        self.loaded = True
        self._ordered = self._facts = None

    def update(self, runs: list[schemas.Run], head: int) -> None:
        """Replace (or add) the given runs; the index is now current up to ``head``."""
        for run in runs:
            self.rows[run.id] = make_row(run)
        self.head = head
        if runs:
            self._ordered = self._facts = None

    def ordered(self) -> list[Row]:
        """Rows newest first (cached until the next change)."""
        if self._ordered is None:
            self._ordered = sorted(
                self.rows.values(), key=lambda r: (r.run.started_at, r.run.id), reverse=True
            )
        return self._ordered

    def facts(self) -> dict[str, Any]:
        """Config and summary keys (most common first), tags and status counts, cached
        until the next change."""
        if self._facts is None:
            self._facts = facts_of(self.rows.values())
        return self._facts

    def query(self, q: Query) -> dict[str, Any]:
        """One page of the filtered, sorted table, with the facts the filters need."""
        rows = self.ordered()
        words = q.text.lower().split()
        if q.status:
            rows = [r for r in rows if r.run.status == q.status]
        if q.tag:
            rows = [r for r in rows if q.tag in r.run.tags]
        if words:
            rows = [r for r in rows if all(w in r.text for w in words)]
        rows = sort_rows(rows, q.sort, q.descending)
        page = rows[q.offset : q.offset + q.limit]
        return {
            "total": len(self.rows),
            "matched": len(rows),
            "offset": q.offset,
            "rows": [r.to_json() for r in page],
            "head": self.head,
            **self.facts(),
        }


def facts_of(rows: Iterable[Row], statuses: dict[str, int] | None = None) -> dict[str, Any]:
    """What the table's filters and column menu offer: config and summary keys (most
    common first) and tags among ``rows``; status counts (of ``rows`` unless given)."""
    config: Counter[str] = Counter()
    summary: Counter[str] = Counter()
    tags: Counter[str] = Counter()
    counted: Counter[str] = Counter()
    for row in rows:
        config.update(row.config.keys())
        summary.update(row.summary.keys())
        tags.update(row.run.tags)
        counted[row.run.status] += 1
    return {
        "columns": {"config": _by_count(config), "summary": _by_count(summary)},
        "tags": sorted(tags),
        "statuses": dict(counted) if statuses is None else statuses,
    }


def sort_rows(rows: list[Row], column: str, descending: bool) -> list[Row]:
    """Rows by ``column``: numbers before text, runs without a value always last."""
    if column == "started_at" and descending:
        return rows  # already in that order
    present: list[tuple[tuple[int, Any], Row]] = []
    missing: list[Row] = []
    for row in rows:
        value = row.value(column)
        if value is None or value == "":
            missing.append(row)
        elif isinstance(value, bool):
            present.append(((0, int(value)), row))
        elif isinstance(value, int | float):
            if value != value:  # NaN sorts with the missing
                missing.append(row)
            else:
                present.append(((0, value), row))
        else:
            present.append(((1, str(value).lower()), row))
    # Python's sort is stable, so equal values keep their newest-first order.
    present.sort(key=lambda pair: pair[0], reverse=descending)
    return [row for _, row in present] + missing


def _by_count(counter: Counter[str]) -> list[str]:
    return [k for k, _ in sorted(counter.items(), key=lambda kv: (-kv[1], kv[0]))]
