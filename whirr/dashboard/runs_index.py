"""The runs table's rows (runs flattened: ``config.<key>``, ``summary.<key>``), what a
page of it asks for (``Query``) and the facts its filters offer (``facts_of``).

No dashboard holds the runs: each page is filtered, sorted and cut by the store
(``ViewReader.runs_page``), beside it or through a server's ``GET /runs`` (issue 19: a
dashboard's memory does not grow with the runs).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import msgspec

from whirr.store.runs_page import RunsPage
from whirr.wire import schemas

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

    def to_json(self) -> dict[str, Any]:
        """The row's JSON shape."""
        run = self.run
        return {
            "id": run.id,
            "name": run.name,
            "status": run.status,
            "tags": run.tags,
            "job_id": run.job_id,
            "archived": run.archived,
            "notes": run.notes,
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
    #: False: archived runs left out (the default); True: them alone; None: every run.
    archived: bool | None = False

    def page(self) -> RunsPage:
        """The store's question for this page."""
        return RunsPage(
            text=self.text,
            status=self.status,
            tag=self.tag,
            sort=self.sort,
            descending=self.descending,
            offset=self.offset,
            limit=self.limit,
            archived=self.archived,
        )


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


def _by_count(counter: Counter[str]) -> list[str]:
    return [k for k, _ in sorted(counter.items(), key=lambda kv: (-kv[1], kv[0]))]
