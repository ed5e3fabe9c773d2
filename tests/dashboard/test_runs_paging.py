"""Issue 19 item 4: a dashboard beside the store pages the runs table from the store
(``runs_page``) instead of holding every run. In-process: ``StoreSource`` answers pages
that equal the Python reference and never fills the runs index. Through a real
``whirr dashboard``: the JSON pages, sorts, filters and counts a few thousand runs."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from dashboard.process import DashboardProcess
from whirr.dashboard.runs_index import Query
from whirr.dashboard.source import StoreSource
from whirr.events import Pending
from whirr.events.base import run_stream
from whirr.events.runs import RunFinished, RunStarted, RunSummaryUpdated
from whirr.project import init_project
from whirr.store.runs_page import RunsPage, in_memory
from whirr.web.backend import Backend
from whirr.web.config import ServerConfig

RUNS = 2500


def fill(store: Any, runs: int) -> None:
    """``runs`` runs through the store's batch append (a few hundred per append)."""
    events: list[Pending] = []
    for i in range(runs):
        run_id = f"run-{i:05d}"
        stream = run_stream(run_id)
        config = {"lr": [0.1, 0.01, 0.001][i % 3], "model": {"depth": 18 + i % 4}, "seed": i}
        events.append(
            Pending(
                stream,
                RunStarted(
                    run_id=run_id,
                    run_dir=f"/nowhere/{run_id}",
                    name=f"trial-{i}",
                    config=config,
                    tags=["sweep", f"g{i % 5}"],
                ),
            )
        )
        if i % 7:
            events.append(
                Pending(stream, RunSummaryUpdated(run_id=run_id, summary={"loss": (i * 37) % 101}))
            )
        if i % 4:
            events.append(
                Pending(
                    stream,
                    RunFinished(run_id=run_id, status="failed" if i % 9 == 0 else "completed"),
                )
            )
        if len(events) >= 600:
            store.append(events)
            events = []
    store.append(events)


@pytest.fixture(scope="module")
def big(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("paging") / "proj"
    root.mkdir()
    project, _ = init_project(root)
    store = project.open_store()
    try:
        fill(store, RUNS)
    finally:
        store.close()
    return root


QUERIES = [
    Query(),
    Query(sort="summary.loss", descending=False),
    Query(sort="config.model.depth", offset=1200, limit=50),
    Query(text="trial-12", sort="name", descending=False),
    Query(status="failed", tag="g3"),
    Query(offset=RUNS + 10),
]


def test_the_store_source_pages_from_the_store(big: Path) -> None:
    project_dir = big / ".whirr"

    async def scenario() -> None:
        config = ServerConfig(data_dir=str(project_dir), project=True)
        backend = Backend(config, asyncio.get_running_loop())
        try:
            src = StoreSource(backend, "local", "test")
            every = backend.store.runs()
            for q in QUERIES:
                answer = await src.runs_table(q)
                page = RunsPage(
                    text=q.text,
                    status=q.status,
                    tag=q.tag,
                    sort=q.sort,
                    descending=q.descending,
                    offset=q.offset,
                    limit=q.limit,
                )
                want = in_memory(every, page)
                assert [r["id"] for r in answer["rows"]] == [r.id for r in want.runs], q
                assert answer["matched"] == want.matched
                assert answer["total"] == RUNS
            assert answer["statuses"] == {"running": 625, "completed": 1667, "failed": 208}
            assert answer["columns"]["config"][:3] == ["lr", "model.depth", "seed"]
            assert answer["tags"] == ["g0", "g1", "g2", "g3", "g4", "sweep"]
            recent = await src.recent_runs(12)
            assert [r["id"] for r in recent] == [
                f"run-{i:05d}" for i in range(RUNS - 1, RUNS - 13, -1)
            ]
        finally:
            backend.close()

    asyncio.run(scenario())


def test_the_runs_json_of_a_real_dashboard(big: Path) -> None:
    proc = DashboardProcess(big)
    try:
        with proc.client() as c:
            first = c.get("/ui/runs", params={"limit": 100}).json()
            by_loss = c.get("/ui/runs", params={"sort": "summary.loss", "order": "asc"}).json()
            deep = c.get("/ui/runs", params={"offset": 2450, "limit": 100}).json()
            found = c.get("/ui/runs", params={"q": "trial-249"}).json()
    finally:
        proc.stop()
    assert (first["total"], first["matched"], len(first["rows"])) == (RUNS, RUNS, 100)
    assert first["rows"][0]["id"] == f"run-{RUNS - 1:05d}"
    losses = [r["summary"].get("loss") for r in by_loss["rows"]]
    assert losses == sorted(losses) and losses[0] == 0
    assert [r["id"] for r in deep["rows"]] == [f"run-{i:05d}" for i in range(49, -1, -1)]
    assert sorted(r["id"] for r in found["rows"]) == ["run-00249"] + [
        f"run-{i:05d}" for i in range(2490, 2500)
    ]
