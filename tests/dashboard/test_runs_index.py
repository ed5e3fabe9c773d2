"""The runs table's rows and facts (the store filters, sorts and pages: its own tests)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from whirr.dashboard.runs_index import Query, facts_of, flatten, make_row
from whirr.store.runs_page import RunsPage
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


def test_flatten_nests_with_dots_and_keeps_lists_as_json() -> None:
    assert flatten({"a": {"b": 1, "c": {"d": [1, 2]}}, "e": {}}) == {
        "a.b": 1,
        "a.c.d": "[1,2]",
        "e": "{}",
    }


def test_facts_offer_keys_by_count_tags_and_statuses() -> None:
    rows = [make_row(run(i)) for i in range(50)]
    facts = facts_of(rows)
    assert facts["tags"] == ["even", "odd"]
    assert facts["statuses"] == {"failed": 17, "completed": 33}
    assert facts["columns"] == {"config": ["lr", "opt.name"], "summary": ["loss"]}
    # Counts given (the store's, exact) win over the rows' own.
    assert facts_of(rows, {"completed": 9000})["statuses"] == {"completed": 9000}
    assert rows[3].to_json()["config"] == {"lr": 0.30000000000000004, "opt.name": "adam"}


def test_a_query_asks_the_store_the_same_page() -> None:
    q = Query(
        text="a b",
        status="failed",
        tag="t",
        sort="summary.loss",
        descending=False,
        offset=200,
        limit=50,
        archived=None,
    )
    assert q.page() == RunsPage(
        text="a b",
        status="failed",
        tag="t",
        sort="summary.loss",
        descending=False,
        offset=200,
        limit=50,
        archived=None,
    )
