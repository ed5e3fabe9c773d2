"""A deleted run's id stays deleted (issue 19 item 1): a later start with that id is
refused under the write lock (410, ``run_deleted``), a ``run.started`` that reaches the
log anyway (an older client, a start that raced the delete) leaves the tombstone as it
is, and a full rebuild agrees; a direct run whose process is gone may be deleted, one
whose process lives may not. Memory, a real SQLite file and PostgreSQL."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from whirr.events import Pending, RunStarted, run_stream
from whirr.services.errors import InvalidState, NotFound
from whirr.services.management import Management
from whirr.services.run_removal import RunGone, missing_run
from whirr.services.runs import Runs
from whirr.store import EventStore, open_store
from whirr.store.memory import MemoryStore


@pytest.fixture(params=["memory", "sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[EventStore]:
    if request.param == "postgres":
        backend = request.getfixturevalue("postgres_backend")
        yield backend.open()
        return
    opened = (
        MemoryStore() if request.param == "memory" else open_store(f"sqlite:///{tmp_path}/w.db")
    )
    try:
        yield opened
    finally:
        opened.close()


def deleted_run(store: EventStore, run_id: str = "local-x") -> Runs:
    runs = Runs(store, hostname="here")
    runs.start(run_id, "/runs/x", name="x")
    runs.finish(run_id, "completed")
    Management(store).delete(run_id)
    return runs


def test_a_start_with_a_deleted_id_is_refused(store: EventStore) -> None:
    runs = deleted_run(store)
    with pytest.raises(RunGone) as refused:
        runs.start("local-x", "/runs/x", name="again")
    assert refused.value.status == 410
    assert refused.value.fields() == {"reason": "run_deleted"}
    assert "was deleted" in str(refused.value) and "whirr runs delete" in str(refused.value)
    assert store.run("local-x") is None
    assert not store.read(stream=run_stream("local-x"), types=["run.started"], after=2)
    # Other ids are not affected, and an unknown id is plainly unknown.
    runs.start("local-y", "/runs/y")
    assert store.run("local-y") is not None
    assert isinstance(missing_run(store, "local-x"), RunGone)
    unknown = missing_run(store, "local-z")
    assert isinstance(unknown, NotFound) and not isinstance(unknown, RunGone)


def test_a_start_that_reaches_the_log_keeps_the_tombstone_and_rebuild_agrees(
    store: EventStore,
) -> None:
    deleted_run(store)
    store.append([Pending(run_stream("local-x"), RunStarted(run_id="local-x", run_dir="/r"))])
    assert store.run("local-x") is None
    assert all(r.id != "local-x" for r in store.runs(archived=None))
    store.rebuild(full=True)
    assert store.run("local-x") is None
    assert all(r.id != "local-x" for r in store.runs(archived=None))
    with pytest.raises(RunGone):
        Runs(store, hostname="here").start("local-x", "/r")


def test_a_direct_run_is_deleted_once_its_process_is_gone(store: EventStore) -> None:
    runs = Runs(store)  # this host: its live status looks at the pid
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        runs.start("local-live", "/runs/live", pid=child.pid)
        with pytest.raises(InvalidState, match="still running"):
            Management(store).delete("local-live", live=runs.live)
        assert store.run("local-live") is not None
    finally:
        child.kill()
        child.wait(timeout=30)
    # Never finished (it crashed): its process is gone, so nothing writes its files.
    assert runs.get("local-live").status == "crashed"
    Management(store).delete("local-live", live=runs.live)
    assert store.run("local-live") is None
    # Another host's run: this one cannot know its process, so its recorded status
    # decides, as it does without a live verdict.
    Runs(store, hostname="elsewhere").start("local-other", "/runs/other", pid=os.getpid())
    for live in (runs.live, None):
        with pytest.raises(InvalidState, match="still running"):
            Management(store).delete("local-other", live=live)
