"""The server's own pauses extend running leases (``LeaseGrace``, issue 17): a lease is
reaped only once the time it had left when the server stopped answering has passed again,
and the requeue says why."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from whirr.services import Jobs
from whirr.services.lease_grace import LeaseGrace
from whirr.store.memory import MemoryStore


class FakeClock:
    def __init__(self) -> None:
        self.now = datetime(2026, 1, 1, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


def running_job(lease: float = 15) -> tuple[Jobs, FakeClock, int]:
    clock = FakeClock()
    jobs = Jobs(MemoryStore(clock=clock), clock=clock)
    jobs.submit(["true"], "/tmp")
    job = jobs.claim("w1", lease)
    assert job is not None
    return jobs, clock, job.id


def test_a_stall_moves_every_running_lease_on_by_its_length() -> None:
    jobs, clock, job_id = running_job()
    grace = LeaseGrace()
    clock.advance(10)  # 5 s of the lease left when the server froze...
    grace.stalled(jobs.store.jobs(["running"]), 20.0)
    clock.advance(20)  # ...for 20 s: those 5 s are the worker's again
    assert jobs.requeue_expired(clock(), grace) == []
    clock.advance(4.9)
    assert jobs.requeue_expired(clock(), grace) == []
    clock.advance(0.2)
    (requeued,) = jobs.requeue_expired(clock(), grace)
    assert (requeued.id, requeued.status, requeued.attempt) == (job_id, "queued", 2)
    reasons = [r.event for r in jobs.store.read(types=["job.requeued"])]
    assert "lease expired after the server stalled for 20.0 s" in reasons[0].reason  # type: ignore[attr-defined]


def test_a_renewal_past_the_extension_makes_it_moot() -> None:
    jobs, clock, job_id = running_job()
    grace = LeaseGrace()
    grace.stalled(jobs.store.jobs(["running"]), 5.0)
    clock.advance(10)
    jobs.heartbeat(job_id, "w1", 1, 15)  # expires at 25 > 15 + 5: the extension is moot
    grace.update(jobs.store.jobs(["running"]))
    clock.advance(15.1)
    assert len(jobs.requeue_expired(clock(), grace)) == 1
    # That renewal may have been the one its worker gave up on during the pause.
    reasons = [r.event for r in jobs.store.read(types=["job.requeued"])]
    assert "after the server stalled for 5.0 s" in reasons[0].reason  # type: ignore[attr-defined]


def test_a_second_renewal_forgets_the_pause() -> None:
    jobs, clock, job_id = running_job()
    grace = LeaseGrace()
    grace.stalled(jobs.store.jobs(["running"]), 5.0)
    for _ in range(2):
        clock.advance(10)
        jobs.heartbeat(job_id, "w1", 1, 15)
        grace.update(jobs.store.jobs(["running"]))  # what the server's reaper does each round
        assert jobs.requeue_expired(clock(), grace) == []
    clock.advance(15.1)
    assert len(jobs.requeue_expired(clock(), grace)) == 1
    reasons = [r.event for r in jobs.store.read(types=["job.requeued"])]
    assert "(lease expired)" in reasons[0].reason  # type: ignore[attr-defined]
    assert len(grace) == 0


def test_a_restart_credits_the_time_since_the_last_event() -> None:
    jobs, clock, _ = running_job()
    grace = LeaseGrace()
    last = clock()
    clock.advance(60)  # the server was down a whole minute
    grace.started(jobs.store.jobs(["running"]), clock(), last)
    assert jobs.requeue_expired(clock(), grace) == []
    clock.advance(15.1)
    assert len(jobs.requeue_expired(clock(), grace)) == 1


def test_without_grace_the_lease_is_the_lease() -> None:
    jobs, clock, _ = running_job()
    clock.advance(15.1)
    assert len(jobs.requeue_expired()) == 1
