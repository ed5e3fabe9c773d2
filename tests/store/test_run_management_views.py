"""Run and job management in the views of every embedded backend (memory, a real SQLite
file): a deleted run is gone from every reader, a cleaned job from listings and counts
but not by id, archived runs filter, and the decisions refuse what they must. PostgreSQL
runs the same through the contract suite's hypothesis test (``store_ops``)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from store_support import Clock, snapshot_matches_fold, views

from whirr.services import Jobs
from whirr.services.errors import InvalidRequest, InvalidState, NotFound
from whirr.services.management import Management
from whirr.store import EventStore
from whirr.store.memory import MemoryStore
from whirr.store.protocol import InvalidEvent
from whirr.store.sqlite import SQLiteStore


@pytest.fixture(params=["memory", "sqlite"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[EventStore]:
    made: EventStore = (
        MemoryStore() if request.param == "memory" else SQLiteStore(str(tmp_path / "w.db"))
    )
    yield made
    made.close()


def ended_job(jobs: Jobs, exit_code: int = 0, retries: int = 0) -> int:
    """A job that ran (its run started) and ended with ``exit_code``."""
    job = jobs.submit(["true"], "/", check=False, retries=retries, retry_delay=3600)
    held = jobs.claim("w", 60)
    assert held is not None and held.id == job.id
    jobs.started(job.id, "w", held.attempt, 1, run_dir=f"/r/{job.run_id}", hostname="h")
    jobs.finish(job.id, "w", held.attempt, exit_code)
    return job.id


def test_a_deleted_run_is_gone_from_every_reader(store: EventStore) -> None:
    clock = Clock()
    jobs = Jobs(store, clock=clock)
    first, second = ended_job(jobs), ended_job(jobs)
    manage = Management(store)
    manage.rename("job-1", "one")
    manage.add_tags("job-1", ["a", "b", "a"])
    manage.remove_tags("job-1", ["b", "zzz"])
    manage.note("job-1", "n1")
    view = manage.note("job-1", "n2", append=True)
    assert (view.name, view.tags, view.notes) == ("one", ["a"], "n1\n\nn2")
    assert manage.update_config("job-1", {"b": 2}).config == {"b": 2}
    manage.set_archived("job-2", True)
    assert [r.id for r in store.runs()] == ["job-2", "job-1"]
    assert [r.id for r in store.runs(archived=False)] == ["job-1"]
    assert [r.id for r in store.runs(archived=True)] == ["job-2"]

    deleted = manage.delete(f"job-{first}")
    assert deleted.id == "job-1"
    assert store.run("job-1") is None
    assert [r.id for r in store.runs()] == [f"job-{second}"]
    assert [r.id for r in store.runs_by_prefix("job-")] == [f"job-{second}"]
    assert [r.id for r in store.runs(tag="a")] == []
    with pytest.raises(NotFound):
        manage.rename("job-1", "again")
    with pytest.raises(NotFound):
        manage.delete("job-1")
    assert store.job(first) is not None  # the job keeps its id, out of the listings
    assert [j.id for j in store.jobs()] == [second]
    before = views(store)
    assert snapshot_matches_fold(store)
    store.rebuild()
    assert views(store) == before


def test_clean_drops_ended_jobs_from_listings_and_counts_only(store: EventStore) -> None:
    clock = Clock()
    jobs = Jobs(store, clock=clock)
    done = ended_job(jobs)
    failed = ended_job(jobs, exit_code=1)
    queued = jobs.submit(["true"], "/", check=False).id
    manage = Management(store)
    later = datetime.now(UTC) + timedelta(hours=2)  # the store stamps events by its clock
    assert manage.clean(older_than=timedelta(hours=3), now=later) == []
    assert manage.clean(statuses=["failed"], now=later) == [failed]
    assert store.job_counts() == {"completed": 1, "queued": 1}
    assert manage.clean(now=later) == [done]
    assert [j.id for j in store.jobs()] == [queued]
    assert store.jobs(["completed", "failed"]) == []
    assert store.job_counts() == {"queued": 1}
    cleaned = store.job(failed)
    assert cleaned is not None and cleaned.cleaned and cleaned.status == "failed"
    assert store.max_job_id() == 3  # a cleaned job's id is never given out again
    assert [r.id for r in store.runs()] == ["job-2", "job-1"]  # runs stay
    with pytest.raises(InvalidRequest):
        manage.clean(statuses=["queued"], now=later)
    before = views(store)
    store.rebuild()
    assert views(store) == before


def test_delete_is_refused_while_the_job_may_still_write(store: EventStore) -> None:
    jobs = Jobs(store, clock=Clock())
    retrying = ended_job(jobs, exit_code=1, retries=1)  # failed, queued again to retry
    assert store.job(retrying).status == "queued"  # type: ignore[union-attr]
    with pytest.raises(InvalidState, match="its job #1 is queued"):
        Management(store).delete("job-1")
    assert store.run("job-1") is not None


def test_bounds_are_the_logs(store: EventStore) -> None:
    ended_job(Jobs(store, clock=Clock()))
    manage = Management(store)
    with pytest.raises(InvalidRequest):
        manage.rename("job-1", "  ")
    with pytest.raises(InvalidRequest):
        manage.add_tags("job-1", [" ", ""])
    with pytest.raises(InvalidEvent):
        manage.rename("job-1", "x" * 201)
    with pytest.raises(InvalidEvent):
        manage.note("job-1", "x" * 65_537)
    assert store.run("job-1").name is None  # type: ignore[union-attr]
