"""Issue 19 item 4 for a remote dashboard: ``GET /runs`` pages from the server's store
(sort, order, offset, q, counts; a plain listing answers as it always did), the client
asks for pages, and ``whirr dashboard --server URL`` pages through it, holding no runs:
its pages equal those of a dashboard beside the same store."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from server_process import ServerProcess

from dashboard.process import DashboardProcess
from dashboard.test_runs_paging import QUERIES, RUNS, fill
from whirr.client import WhirrClient
from whirr.dashboard import source as dashboard_source
from whirr.dashboard.remote import RemoteSource
from whirr.dashboard.runs_index import Query
from whirr.dashboard.source import StoreSource
from whirr.facade.http import HttpWhirr
from whirr.services.management import Management
from whirr.store import open_store
from whirr.store.runs_page import RunsPage, in_memory
from whirr.web.backend import Backend
from whirr.web.config import ServerConfig

#: Runs archived after the fill (hidden from the default pages).
ARCHIVED = ["run-00007", "run-01500", "run-02499"]


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    root = tmp_path_factory.mktemp("remote-paging")
    data = root / "data"
    data.mkdir()
    store = open_store(f"sqlite://{(data / 'whirr.db').resolve()}")
    try:
        fill(store, RUNS)
        for run_id in ARCHIVED:
            Management(store).set_archived(run_id, True)
    finally:
        store.close()
    proc = ServerProcess(root)
    try:
        yield proc
    finally:
        proc.stop()


def every_run(server: ServerProcess) -> list[Any]:
    store = open_store(f"sqlite://{(server.data_dir / 'whirr.db').resolve()}")
    try:
        return store.runs()
    finally:
        store.close()


def test_get_runs_pages_only_when_asked(server: ServerProcess) -> None:
    every = every_run(server)
    with server.http() as c:
        plain = c.get("/runs", params={"limit": 5})
        assert plain.status_code == 200
        # The listing as before: newest first, nothing beside the runs.
        assert list(plain.json()) == ["runs"]
        assert [r["id"] for r in plain.json()["runs"]] == [
            "run-02498", "run-02497", "run-02496", "run-02495", "run-02494"
        ]  # fmt: skip
        asked = {"sort": "summary.loss", "order": "asc", "offset": 300, "limit": 40}
        page = c.get("/runs", params={**asked, "tag": "g2", "counts": "true"}).json()
        want = in_memory(
            every, RunsPage(sort="summary.loss", descending=False, offset=300, limit=40, tag="g2")
        )
        assert [r["id"] for r in page["runs"]] == [r.id for r in want.runs]
        assert page["matched"] == want.matched
        assert page["statuses"] == {"running": 624, "completed": 1665, "failed": 208}
        only = c.get("/runs", params={"archived": "only", "offset": 0}).json()
        assert [r["id"] for r in only["runs"]] == ARCHIVED[::-1]
        assert (only["matched"], "statuses" in only) == (3, False)
        words = c.get("/runs", params={"q": "TRIAL-249 g4"}).json()
        assert [r["id"] for r in words["runs"]] == ["run-02494", "run-00249"]
        bad = c.get("/runs", params={"order": "sideways"})
        assert bad.status_code == 422 and "order" in bad.json()["detail"]


class Counting(HttpWhirr):
    """The facade a remote dashboard uses, counting the runs each answer carried."""

    def __init__(self, client: WhirrClient) -> None:
        super().__init__(client)
        self.answers: list[int] = []

    def runs(self, *args: Any, **kwargs: Any) -> Any:
        found = super().runs(*args, **kwargs)
        self.answers.append(len(found))
        return found

    def runs_page(self, page: RunsPage, counts: bool = False) -> Any:
        found = super().runs_page(page, counts)
        self.answers.append(len(found.runs))
        return found


def test_a_remote_source_answers_the_pages_of_a_local_one(server: ServerProcess) -> None:
    async def scenario() -> None:
        backend = Backend(ServerConfig(data_dir=str(server.data_dir)), asyncio.get_running_loop())
        whirr = Counting(WhirrClient(server.url, server.token))
        remote = RemoteSource(whirr)
        try:
            local = StoreSource(backend, "server", "test")
            queries = [*QUERIES, Query(archived=True), Query(archived=None, sort="name")]
            for q in queries:
                near, far = await local.runs_table(q), await remote.runs_table(q)
                near.pop("head"), far.pop("head")  # each source's own idea of the head
                assert far == near, q
            assert far["total"] == RUNS
            # Nothing of the runs is held: each answer carried one page of them, or the
            # newest runs whose keys and tags the filters offer.
            assert max(whirr.answers) <= dashboard_source.FACTS_SAMPLE
            assert len(whirr.answers) <= 2 * len(queries) + 3
        finally:
            remote.close()
            whirr.close()
            backend.close()

    asyncio.run(scenario())


def test_whirr_dashboard_server_pages_like_the_local_one(
    server: ServerProcess, tmp_path: Path
) -> None:
    dash = DashboardProcess(
        tmp_path, "--server", server.url, env={"WHIRR_TOKEN": server.token or ""}
    )
    try:
        with dash.client() as c:
            deep = c.get("/ui/runs", params={"sort": "config.seed", "offset": 2400}).json()
            archived = c.get("/ui/runs", params={"archived": "only"}).json()
            bad = c.get("/ui/runs", params={"archived": "maybe"})
    finally:
        dash.stop()
    # Sorted by seed descending, 2,497 runs not archived: the last 97 are seeds 97 to 0
    # (less run-00007's).
    assert [r["config"]["seed"] for r in deep["rows"]] == [s for s in range(97, -1, -1) if s != 7]
    assert (deep["matched"], deep["total"]) == (RUNS - 3, RUNS - 3)
    assert [r["id"] for r in archived["rows"]] == ARCHIVED[::-1]
    assert all(r["archived"] for r in archived["rows"]) and archived["total"] == 3
    assert bad.status_code == 422
