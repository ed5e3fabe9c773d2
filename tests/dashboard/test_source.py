"""The dashboard's source over the facade: its runs index reads again only the runs that
run events touched, whichever ``Whirr`` it is over."""

from __future__ import annotations

from pathlib import Path

from whirr.dashboard import source
from whirr.dashboard.runs_index import RunsIndex
from whirr.facade.local import StoreSettings, StoreWhirr
from whirr.project import init_project
from whirr.services.runs import Runs
from whirr.wire import schemas


class Counting(StoreWhirr):
    """A ``StoreWhirr`` that counts the reads the index makes."""

    listed = 0
    read: list[str]

    def runs(
        self, status: str | None = None, tag: str | None = None, limit: int | None = 100
    ) -> list[schemas.Run]:
        self.listed += 1
        return super().runs(status, tag, limit)

    def run(self, ref: str) -> schemas.Run:
        self.read.append(ref)
        return super().run(ref)


def test_the_runs_index_rereads_only_changed_runs(tmp_path: Path) -> None:
    project, _ = init_project(tmp_path / "proj")
    store = project.open_store()
    try:
        whirr = Counting(store, StoreSettings(runs_dir=project.runs_dir), "test")
        whirr.read = []
        runs = Runs(store, hostname="h")
        for i in range(5):
            runs.start(f"local-{i}", str(project.run_dir(f"local-{i}")), name=f"r{i}")
        index = RunsIndex()
        source.refresh_index(whirr, index, store.head())
        assert (whirr.listed, len(index.rows)) == (1, 5)

        runs.update_summary("local-3", {"loss": 0.5})
        runs.finish("local-1", "completed")
        runs.start("local-9", str(project.run_dir("local-9")))
        source.refresh_index(whirr, index, store.head())
        assert whirr.listed == 1 and sorted(whirr.read) == ["local-1", "local-3", "local-9"]
        assert index.rows["local-3"].summary == {"loss": 0.5}
        assert index.rows["local-1"].run.status == "completed"
        assert len(index.rows) == 6 and index.head == store.head()

        whirr.read.clear()
        source.refresh_index(whirr, index, store.head())  # nothing new
        assert whirr.listed == 1 and whirr.read == []

        # A flood of run events: reading every run at once is cheaper.
        for i in range(source.INDEX_FLOOD + 1):
            runs.update_summary("local-0", {"step": i})
        source.refresh_index(whirr, index, store.head())
        assert whirr.listed == 2 and whirr.read == []
        assert index.rows["local-0"].summary == {"step": source.INDEX_FLOOD}
    finally:
        store.close()


def test_changes_come_in_batches(tmp_path: Path) -> None:
    project, _ = init_project(tmp_path / "proj")
    store = project.open_store()
    try:
        whirr = StoreWhirr(store, StoreSettings(runs_dir=project.runs_dir), "test")
        runs = Runs(store, hostname="h")
        begin = store.head()  # after the project's own first event (project.created)
        for i in range(source.CHANGES_BATCH + 3):
            runs.start(f"local-{i}", str(project.run_dir(f"local-{i}")))
        first = source.read_changes(whirr, begin)
        assert len(first) == source.CHANGES_BATCH and first[0].type == "run.started"
        rest = source.read_changes(whirr, first[-1].position)
        assert [c.position for c in rest] == list(range(first[-1].position + 1, store.head() + 1))
        assert source.read_changes(whirr, store.head()) == []
    finally:
        store.close()
