"""The Runs service: recording run events, finding runs by prefix, truthful live status."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from whirr.services import InvalidRequest, NotFound
from whirr.services.runs import Runs, process_alive
from whirr.store.memory import MemoryStore


@pytest.fixture
def runs() -> Runs:
    return Runs(MemoryStore(), hostname="here")


def dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def test_lifecycle_folds_into_the_view(runs: Runs) -> None:
    runs.start("local-a", "/r/a", name="a", config={"lr": 1}, tags=["x", ""], pid=os.getpid())
    runs.update_summary("local-a", {"best": 1})
    runs.update_summary("local-a", {"final": 2})
    runs.artifact_saved("local-a", "model.pt", 10)
    runs.finish("local-a", "failed", error="boom")
    view = runs.get("local-a")
    assert view.status == "failed" and view.error == "boom" and view.tags == ["x"]
    assert view.summary == {"best": 1, "final": 2}
    assert [(a.path, a.size) for a in view.artifacts] == [("model.pt", 10)]
    assert view.hostname == "here" and view.duration_seconds is not None


def test_resolve_exact_prefix_ambiguous_unknown(runs: Runs) -> None:
    for run_id in (
        "local-20250101-000000-aaaaaa",
        "local-20250101-000000-abbbbb",
        "job-1",
        "job-12",
    ):
        runs.start(run_id, f"/r/{run_id}")
    assert runs.resolve("job-1").id == "job-1"  # exact beats being a prefix of job-12
    assert runs.resolve("job-12").id == "job-12"
    assert runs.resolve("local-20250101-000000-ab").id == "local-20250101-000000-abbbbb"
    with pytest.raises(InvalidRequest, match="several runs"):
        runs.resolve("local-2025")
    with pytest.raises(NotFound, match="no run matches"):
        runs.resolve("nope")
    with pytest.raises(InvalidRequest):
        runs.resolve("")


def test_a_direct_run_whose_process_is_gone_reads_as_crashed(runs: Runs) -> None:
    runs.start("local-dead", "/r/d", pid=dead_pid())
    runs.start("local-live", "/r/l", pid=os.getpid())
    runs.start("job-7", "/r/j", job_id=7, pid=dead_pid())  # its worker records its end
    assert runs.get("local-dead").status == "crashed"
    assert runs.get("local-live").status == "running"
    assert runs.get("job-7").status == "running"
    assert {r.id for r in runs.list(status="crashed")} == {"local-dead"}
    assert {r.id for r in runs.list(status="running")} == {"local-live", "job-7"}
    assert {r.id: r.status for r in runs.list()}["local-dead"] == "crashed"
    # The log itself is unchanged: reading never writes.
    assert runs.store.run("local-dead").status == "running"  # type: ignore[union-attr]


def test_another_hosts_run_is_left_alone() -> None:
    store = MemoryStore()
    Runs(store, hostname="elsewhere").start("local-x", "/r/x", pid=dead_pid())
    assert Runs(store, hostname="here").get("local-x").status == "running"


def test_list_filters_and_limits(runs: Runs) -> None:
    for i in range(5):
        runs.start(f"local-{i}", f"/r/{i}", tags=["even"] if i % 2 == 0 else [])
        runs.finish(f"local-{i}", "completed")
    assert [r.id for r in runs.list(limit=2)] == ["local-4", "local-3"]
    assert [r.id for r in runs.list(tag="even")] == ["local-4", "local-2", "local-0"]
    assert len(runs.list(status="completed")) == 5 and runs.list(status="failed") == []


def test_process_alive_rejects_a_reused_pid() -> None:
    from datetime import UTC, datetime, timedelta

    assert process_alive(os.getpid())
    long_ago = datetime.now(UTC) - timedelta(days=1)
    assert not process_alive(os.getpid(), long_ago)  # this process began after that run
    assert not process_alive(dead_pid())
