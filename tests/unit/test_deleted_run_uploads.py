"""Uploads that race a run's delete leave nothing behind (issue 19 item 1): the delete
removes files after ``run.deleted`` is in the log, and each writer either checks under the
run's lock (shipping) or looks again after writing and takes back what it wrote (artifact
uploads). The interleavings are forced: the delete runs at the writer's worst moment.
A real SQLite store, real files; ``whirr.services`` called as the routes call them."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from pathlib import Path

import pytest

from whirr.services.artifact_store import LocalArtifactStore
from whirr.services.artifact_uploads import ArtifactUploads
from whirr.services.management import Management
from whirr.services.run_removal import RunGone, remove_run_dir
from whirr.services.runs import Runs
from whirr.services.shipping import Shipping
from whirr.store import EventStore, open_store

RUN = "local-racing"


@pytest.fixture
def store(tmp_path: Path) -> Iterator[EventStore]:
    opened = open_store(f"sqlite:///{tmp_path}/w.db")
    runs = Runs(opened, hostname="elsewhere")  # another host's: its recorded status decides
    runs.start(RUN, str(tmp_path / "runs" / RUN), files_mode="shipped")
    runs.finish(RUN, "completed")
    try:
        yield opened
    finally:
        opened.close()


def delete(store: EventStore, tmp_path: Path) -> None:
    """What ``POST /runs/{id}/delete`` does, in its order: the event, then the files."""
    Management(store).delete(RUN)
    remove_run_dir(tmp_path / "runs", RUN)
    ArtifactUploads(store, tmp_path, LocalArtifactStore(tmp_path / "runs"), 1 << 20).forget(RUN)
    Shipping(store, tmp_path, tmp_path / "runs").forget(RUN)


def left(tmp_path: Path) -> list[str]:
    """Every path of the run's under the data dir (its directory, index, partial files)."""
    found = (str(p.relative_to(tmp_path)) for p in tmp_path.rglob("*"))
    return sorted(p for p in found if RUN in p)


def test_a_partial_upload_the_delete_overtook_is_removed(store: EventStore, tmp_path: Path) -> None:
    (tmp_path / "runs").mkdir()
    up = ArtifactUploads(store, tmp_path, LocalArtifactStore(tmp_path / "runs"), 1 << 20)
    partial = up.open(RUN, 0, "model.bin", 0, 5)  # checked: the run was there
    delete(store, tmp_path)
    partial.write([b"12345"])
    with pytest.raises(RunGone):
        up.finish_write(RUN, 0, "model.bin", partial)
    assert left(tmp_path) == []


class DeletedWhileStoring(LocalArtifactStore):
    """The local store, with the run deleted just before it stores the file: the worst
    moment for ``complete`` (its checks passed, the file lands after the delete)."""

    def __init__(self, runs_dir: Path, then: object) -> None:
        super().__init__(runs_dir)
        self.then = then

    def put(self, run_id: str, parts: tuple[str, ...], source: Path) -> str | None:
        self.then()  # type: ignore[operator]
        return super().put(run_id, parts, source)


def test_an_artifact_stored_after_the_delete_is_taken_back(
    store: EventStore, tmp_path: Path
) -> None:
    (tmp_path / "runs").mkdir()
    data = b"weights"
    artifacts = DeletedWhileStoring(tmp_path / "runs", lambda: delete(store, tmp_path))
    up = ArtifactUploads(store, tmp_path, artifacts, 1 << 20)
    partial = up.open(RUN, 0, "ckpt/model.bin", 0, len(data))
    partial.write([data])
    partial.hash([data])
    up.finish_write(RUN, 0, "ckpt/model.bin", partial)
    with pytest.raises(RunGone):
        up.verify_and_store(RUN, 0, "ckpt/model.bin", len(data), hashlib.sha256(data).hexdigest())
    assert left(tmp_path) == []


def test_run_files_shipped_after_the_delete_are_refused(store: EventStore, tmp_path: Path) -> None:
    shipping = Shipping(store, tmp_path, tmp_path / "runs")
    assert shipping.upload(RUN, "output.log", 0, 0, b"line\n") == 5
    assert left(tmp_path) == [f"runs/{RUN}", f"runs/{RUN}/output.log", f"shipping/{RUN}.json"]
    delete(store, tmp_path)
    assert left(tmp_path) == []
    with pytest.raises(RunGone):
        shipping.upload(RUN, "output.log", 0, 5, b"more\n")
    with pytest.raises(RunGone):
        shipping.final(RUN, 0, {"output.log": 10})
    assert left(tmp_path) == []
