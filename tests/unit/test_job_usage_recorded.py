"""A job's usage travels with its end into the log and the view, on SQLite and in memory:
on ``job.finished``, on ``job.retry_scheduled`` for a failed attempt that is retried (the
view then has none: the job is queued again), and stays absent when none was given."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from whirr.events import JobFinished, JobRetryScheduled, JobUsage
from whirr.services import Jobs
from whirr.store.memory import MemoryStore
from whirr.store.sqlite import SQLiteStore

USED = JobUsage(cpu_seconds=2.5, cpu_user_seconds=2.0, cpu_system_seconds=0.5)


@pytest.fixture(params=["memory", "sqlite"])
def store(request, tmp_path: Path) -> Iterator[object]:
    s = MemoryStore() if request.param == "memory" else SQLiteStore(str(tmp_path / "w.db"))
    yield s
    s.close()


def attempt(jobs: Jobs, job_id: int, exit_code: int, usage: JobUsage | None) -> None:
    job = jobs.claim("w", 60)
    assert job is not None and job.id == job_id
    jobs.started(job_id, "w", job.attempt, 1, run_dir="/r", hostname="h")
    jobs.finish(job_id, "w", job.attempt, exit_code, usage=usage)


def test_usage_is_recorded_with_each_end(store) -> None:
    jobs = Jobs(store)
    retried = jobs.submit(["true"], "/", check=False, retries=1, retry_delay=0).id
    attempt(jobs, retried, 1, USED)
    assert jobs.get(retried).status == "queued" and jobs.get(retried).usage is None
    attempt(jobs, retried, 0, JobUsage(cpu_seconds=1.0, memory_peak_bytes=2**30))
    assert jobs.get(retried).usage == JobUsage(cpu_seconds=1.0, memory_peak_bytes=2**30)
    plain = jobs.submit(["true"], "/", check=False).id
    attempt(jobs, plain, 0, None)
    assert (jobs.get(plain).status, jobs.get(plain).usage) == ("completed", None)
    ends = [r.event for r in store.read(0) if isinstance(r.event, JobFinished | JobRetryScheduled)]
    assert [(type(e).__name__, e.usage) for e in ends] == [
        ("JobRetryScheduled", USED),
        ("JobFinished", JobUsage(cpu_seconds=1.0, memory_peak_bytes=2**30)),
        ("JobFinished", None),
    ]
    store.rebuild(full=True)  # the views folded again from the log say the same
    assert jobs.get(retried).usage == JobUsage(cpu_seconds=1.0, memory_peak_bytes=2**30)
