"""One page of runs, filtered and sorted by the store (``ViewReader.runs_page``): what the
dashboard's runs table asks for, so a reader never holds every run to show a hundred.

The order, the same on every backend (the SQL of SQLite and PostgreSQL and ``in_memory``,
the reference the tests hold them to):

- runs without a value in the sort column (absent, null or ``""``) always last;
- then numbers (booleans count as 0 and 1) before text (lists and objects as their JSON);
- numbers by value, text case-insensitively, ascending or descending;
- equal values (and the missing) newest first: ``started_at`` then ``id``, descending.

A sort column is ``started_at``, ``duration`` (seconds from start to finish), ``tags``
(joined with commas) or a dotted path into the run's view: ``name``, ``status``,
``config.opt.lr``, ``summary.val/loss`` (a key holding a dot itself cannot be named).
The text filter keeps runs whose id, name, tags and status (lowercased, joined by spaces)
hold every word of it.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import msgspec

from whirr.projections import RunView

_json = msgspec.json.Encoder()
#: Sort columns that are not a path into the view.
COMPUTED = ("started_at", "duration", "tags")


@dataclass(frozen=True)
class RunsPage:
    """What one page of the runs table asks for."""

    text: str = ""
    status: str | None = None
    tag: str | None = None
    sort: str = "started_at"
    descending: bool = True
    offset: int = 0
    limit: int = 100
    #: None: archived or not; False (the default listings): not archived.
    archived: bool | None = False

    @property
    def words(self) -> list[str]:
        """The text filter's words, lowercased."""
        return self.text.lower().split()

    @property
    def path(self) -> list[str]:
        """The sort column as a path into the run's view (``config.lr``: config, lr)."""
        return self.sort.split(".")

    def sqlite_path(self) -> str:
        """The path as SQLite's JSON functions take it (each label quoted)."""
        return "$" + "".join('."' + part.replace('"', "") + '"' for part in self.path)


@dataclass(frozen=True)
class RunsPageResult:
    """The page's runs and how many runs match the filters in all."""

    runs: list[RunView]
    matched: int


def haystack(run: RunView) -> str:
    """What the text filter searches in a run."""
    return " ".join([run.id, run.name or "", *run.tags, run.status]).lower()


def sort_value(run: RunView, sort: str) -> Any:
    """The run's value in the sort column (None when it has none)."""
    if sort == "started_at":
        return run.started_at.timestamp()
    if sort == "duration":
        return run.duration_seconds
    if sort == "tags":
        return ",".join(run.tags)
    value: Any = msgspec.to_builtins(run)
    for part in sort.split("."):
        if not isinstance(value, dict):
            return None
        value = value.get(part)
    if isinstance(value, list | dict):
        return _json.encode(value).decode()
    return value


def matches(run: RunView, q: RunsPage) -> bool:
    """Whether the run passes the page's filters (a deleted run never does)."""
    if run.status == "deleted":
        return False
    if q.archived is not None and run.archived != q.archived:
        return False
    if q.status is not None and run.status != q.status:
        return False
    if q.tag is not None and q.tag not in run.tags:
        return False
    hay = haystack(run) if q.words else ""
    return all(w in hay for w in q.words)


def in_memory(runs: Iterable[RunView], q: RunsPage) -> RunsPageResult:
    """The page, computed over ``runs`` in Python (the memory store, and the reference
    the SQL of the other stores is tested against)."""
    found = [r for r in runs if matches(r, q)]
    # Stable sorts, least significant key first.
    found.sort(key=lambda r: (r.started_at, r.id), reverse=True)
    keyed = [(sort_value(r, q.sort), r) for r in found]
    # NaN is null once stored as JSON: missing here too.
    missing = [r for v, r in keyed if v is None or v == "" or v != v]
    numbers = [(v, r) for v, r in keyed if isinstance(v, int | float) and v == v]
    texts = [(v.lower(), r) for v, r in keyed if isinstance(v, str) and v != ""]
    numbers.sort(key=lambda pair: pair[0], reverse=q.descending)
    texts.sort(key=lambda pair: pair[0], reverse=q.descending)
    ordered = [r for _, r in numbers] + [r for _, r in texts] + missing
    return RunsPageResult(ordered[q.offset : q.offset + q.limit], len(ordered))


def status_counts(runs: Iterable[RunView], archived: bool | None = False) -> dict[str, int]:
    """How many of ``runs`` have each status (the memory store's ``run_status_counts``)."""
    counts: dict[str, int] = {}
    for run in runs:
        if run.status != "deleted" and (archived is None or run.archived == archived):
            counts[run.status] = counts.get(run.status, 0) + 1
    return counts
