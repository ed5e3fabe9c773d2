"""The dashboard's source over the facade: changes come in batches."""

from __future__ import annotations

from pathlib import Path

from whirr.dashboard import source
from whirr.facade.local import StoreSettings, StoreWhirr
from whirr.project import init_project
from whirr.services.runs import Runs


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
