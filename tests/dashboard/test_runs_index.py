"""The runs table: filter, sort by any column, page."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from whirr.dashboard.runs_index import Query, RunsIndex, flatten
from whirr.wire import schemas

T0 = datetime(2024, 5, 1, tzinfo=UTC)


def run(i: int, **kw: Any) -> schemas.Run:
    base: dict[str, Any] = dict(
        id=f"job-{i}",
        job_id=i,
        name=f"run-{i}",
        config={"lr": 0.1 * (i % 4), "opt": {"name": "adam" if i % 2 else "sgd"}},
        tags=["even" if i % 2 == 0 else "odd"],
        status="completed" if i % 3 else "failed",
        started_at=T0 + timedelta(minutes=i),
        finished_at=T0 + timedelta(minutes=i, seconds=i),
        duration_seconds=float(i),
        summary={"loss": 1.0 / (i + 1)} if i % 5 else {},
        hostname="h",
        run_dir="/x",
    )
    base.update(kw)
    return schemas.Run(**base)


def index(n: int = 50) -> RunsIndex:
    idx = RunsIndex()
    idx.load([run(i) for i in range(n)], head=10)
    return idx


def test_flatten_nests_with_dots_and_keeps_lists_as_json() -> None:
    assert flatten({"a": {"b": 1, "c": {"d": [1, 2]}}, "e": {}}) == {
        "a.b": 1,
        "a.c.d": "[1,2]",
        "e": "{}",
    }


def test_newest_first_by_default_with_facts_for_the_filters() -> None:
    page = index().query(Query(limit=10))
    assert page["total"] == page["matched"] == 50
    assert [r["id"] for r in page["rows"][:3]] == ["job-49", "job-48", "job-47"]
    assert page["tags"] == ["even", "odd"]
    assert page["statuses"] == {"failed": 17, "completed": 33}
    assert page["columns"] == {"config": ["lr", "opt.name"], "summary": ["loss"]}


def test_filters_combine() -> None:
    page = index().query(Query(status="failed", tag="odd", text="run-1", limit=100))
    assert {r["id"] for r in page["rows"]} == {"job-15"}
    assert index().query(Query(text="RUN-4 job-4"))["matched"] == 11  # case-insensitive words


def test_sort_by_a_summary_column_puts_runs_without_it_last_either_way() -> None:
    idx = index()
    up = idx.query(Query(sort="summary.loss", descending=False, limit=100))["rows"]
    assert up[0]["id"] == "job-49"
    assert all("loss" not in r["summary"] for r in up[-10:])
    down = idx.query(Query(sort="summary.loss", descending=True, limit=100))["rows"]
    assert down[0]["id"] == "job-1" and all("loss" not in r["summary"] for r in down[-10:])


def test_sort_by_config_text_and_paging() -> None:
    idx = index()
    rows = idx.query(Query(sort="config.opt.name", descending=False, limit=100))["rows"]
    names = [r["config"]["opt.name"] for r in rows]
    assert names == sorted(names)
    page2 = idx.query(Query(sort="duration", descending=False, offset=10, limit=10))["rows"]
    assert [r["id"] for r in page2] == [f"job-{i}" for i in range(10, 20)]


def test_update_replaces_changed_runs() -> None:
    idx = index(5)
    idx.update([run(2, status="running", summary={"loss": 0.5})], head=11)
    page = idx.query(Query(status="running"))
    assert [r["id"] for r in page["rows"]] == ["job-2"] and idx.head == 11
    idx.update([run(99)], head=12)
    assert idx.query(Query())["rows"][0]["id"] == "job-99"
