"""Job decisions on the in-memory store: submit, claim, fencing, cancel, retry, requeue."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from whirr.services import InvalidRequest, InvalidState, Jobs, LeaseLost, NotFound
from whirr.store.memory import MemoryStore


class FakeClock:
    """A clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = datetime(2026, 1, 1, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def jobs(clock: FakeClock) -> Jobs:
    return Jobs(MemoryStore(clock=clock), clock=clock)


def start(jobs: Jobs, worker: str = "w1", lease: float = 10) -> int:
    job = jobs.claim(worker, lease)
    assert job is not None
    jobs.started(job.id, worker, job.attempt, 1234, run_dir="/tmp/r", hostname="h")
    return job.id


def test_submit_assigns_dense_ids_and_run_ids(jobs: Jobs, tmp_path) -> None:
    a = jobs.submit(["true"], str(tmp_path), name="a", tags=["x", ""])
    b = jobs.submit(["true"], str(tmp_path))
    assert (a.id, a.run_id, a.tags, a.status) == (1, "job-1", ["x"], "queued")
    assert (b.id, b.run_id) == (2, "job-2")


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        ([], "empty command"),
        ([""], "empty command"),
        (["no-such-program-xyz"], "not found"),
        (["./missing.sh"], "not an executable"),
    ],
)
def test_submit_rejects_what_cannot_run(jobs: Jobs, tmp_path, argv, message) -> None:
    with pytest.raises(InvalidRequest, match=message):
        jobs.submit(argv, str(tmp_path))
    assert jobs.store.head() == 0


def test_submit_rejects_missing_workdir(jobs: Jobs, tmp_path) -> None:
    with pytest.raises(InvalidRequest, match="does not exist"):
        jobs.submit(["true"], str(tmp_path / "nope"))


def test_claim_is_priority_then_fifo(jobs: Jobs, tmp_path) -> None:
    for priority in (0, 5, 0, 5):
        jobs.submit(["true"], str(tmp_path), priority=priority)
    order = [jobs.claim("w", 10).id for _ in range(4)]  # type: ignore[union-attr]
    assert order == [2, 4, 1, 3]
    assert jobs.claim("w", 10) is None


def test_finish_outcomes_and_run(jobs: Jobs, tmp_path) -> None:
    jobs.submit(["true"], str(tmp_path))
    jobs.submit(["true"], str(tmp_path))
    one, two = start(jobs), start(jobs)
    assert jobs.finish(one, "w1", 1, 0).status == "completed"
    assert jobs.finish(two, "w1", 1, -15).status == "failed"
    assert jobs.store.run("job-1").status == "completed"
    assert jobs.store.run("job-2").exit_code == -15


def test_stale_worker_cannot_report(jobs: Jobs, clock: FakeClock, tmp_path) -> None:
    jobs.submit(["true"], str(tmp_path))
    job_id = start(jobs, "old", lease=5)
    clock.advance(6)
    [requeued] = jobs.requeue_expired()
    assert (requeued.status, requeued.attempt) == ("queued", 2)
    assert jobs.store.run("job-1").status == "crashed"
    with pytest.raises(LeaseLost):
        jobs.heartbeat(job_id, "old", 1, 5)
    claimed = jobs.claim("new", 5)
    assert claimed is not None and claimed.attempt == 2
    with pytest.raises(LeaseLost):
        jobs.finish(job_id, "old", 1, 0)
    with pytest.raises(LeaseLost):  # right worker name, wrong attempt: still fenced
        jobs.finish(job_id, "new", 1, 0)
    assert jobs.finish(job_id, "new", 2, 0).status == "completed"


def test_attempts_run_out(jobs: Jobs, clock: FakeClock, tmp_path) -> None:
    jobs.submit(["true"], str(tmp_path), max_attempts=2)
    for _ in range(2):
        start(jobs, lease=1)
        clock.advance(2)
        jobs.requeue_expired()
    job = jobs.get(1)
    assert job.status == "failed"
    assert "no attempts left" in (job.error or "")


def test_heartbeat_extends_lease(jobs: Jobs, clock: FakeClock, tmp_path) -> None:
    jobs.submit(["true"], str(tmp_path))
    job_id = start(jobs, lease=5)
    clock.advance(4)
    jobs.heartbeat(job_id, "w1", 1, 5)
    clock.advance(4)
    assert jobs.requeue_expired() == []
    assert jobs.get(job_id).status == "running"


def test_cancel_queued_running_and_finished(jobs: Jobs, tmp_path) -> None:
    jobs.submit(["true"], str(tmp_path))
    jobs.submit(["true"], str(tmp_path))
    running = start(jobs)
    previous, job = jobs.cancel(2)
    assert (previous, job.status) == ("queued", "cancelled")
    previous, job = jobs.cancel(running)
    assert (previous, job.status, job.cancel_requested) == ("running", "running", True)
    assert jobs.heartbeat(running, "w1", 1, 10).cancel_requested
    # A job whose cancel was requested ends cancelled whatever its exit code.
    assert jobs.finish(running, "w1", 1, -15).status == "cancelled"
    with pytest.raises(InvalidState, match="already ended"):
        jobs.cancel(running)
    with pytest.raises(NotFound):
        jobs.cancel(99)


def test_cancel_all_queued(jobs: Jobs, tmp_path) -> None:
    for _ in range(3):
        jobs.submit(["true"], str(tmp_path))
    start(jobs)
    assert jobs.cancel_all_queued() == [2, 3]
    assert jobs.get(1).status == "running"


def test_retry_links_parent_and_continues_attempts(jobs: Jobs, tmp_path) -> None:
    jobs.submit(["true"], str(tmp_path), name="x", tags=["t"])
    jobs.finish(start(jobs), "w1", 1, 3)
    retry = jobs.retry(1)
    assert (retry.id, retry.parent_job_id, retry.attempt, retry.name, retry.tags) == (
        2,
        1,
        2,
        "x",
        ["t"],
    )
    with pytest.raises(InvalidState):
        jobs.retry(2)


def test_expired_lease_with_cancel_pending_ends_cancelled(
    jobs: Jobs, clock: FakeClock, tmp_path
) -> None:
    jobs.submit(["true"], str(tmp_path))
    job_id = start(jobs, lease=1)
    jobs.cancel(job_id)
    clock.advance(2)
    jobs.requeue_expired()
    assert jobs.get(job_id).status == "cancelled"
