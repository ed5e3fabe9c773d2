"""Projections are pure folds; replaying the log gives the views built incrementally."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from whirr.events import JobClaimed, JobFinished, Pending, Recorded, WorkerRegistered
from whirr.projections import fold
from whirr.projections.workers import WorkerView
from whirr.services import Jobs, WhirrError, Workers
from whirr.store.memory import MemoryStore

T0 = datetime(2026, 1, 1, tzinfo=UTC)

# One step of a random history: (operation, job index, worker index, exit code).
steps = st.lists(
    st.tuples(
        st.sampled_from(
            [
                "submit",
                "claim",
                "start",
                "heartbeat",
                "finish",
                "cancel",
                "expire",
                "retry",
                "register",
                "stop",
            ]
        ),
        st.integers(0, 5),
        st.integers(0, 2),
        st.sampled_from([0, 1, -9, -15]),
    ),
    max_size=60,
)


@settings(max_examples=150, deadline=None)
@given(steps)
def test_replay_equals_incremental(history) -> None:
    now = [T0]
    store = MemoryStore(clock=lambda: now[0])
    jobs, workers = Jobs(store, clock=lambda: now[0]), Workers(store)
    for op, j, w, code in history:
        now[0] += timedelta(seconds=1)
        worker = f"w{w}"
        job_id = j + 1
        try:
            if op == "submit":
                jobs.submit(["true"], "/", name=f"n{j}", check=False, max_attempts=2)
            elif op == "claim":
                jobs.claim(worker, 3)
            elif op == "start":
                job = jobs.get(job_id)
                jobs.started(
                    job_id,
                    job.worker_id or worker,
                    job.attempt,
                    100 + j,
                    run_dir="/r",
                    hostname="h",
                )
            elif op == "heartbeat":
                job = jobs.get(job_id)
                jobs.heartbeat(job_id, job.worker_id or worker, job.attempt, 3)
            elif op == "finish":
                job = jobs.get(job_id)
                jobs.finish(job_id, job.worker_id or worker, job.attempt, code)
            elif op == "cancel":
                jobs.cancel(job_id)
            elif op == "expire":
                now[0] += timedelta(seconds=5)
                jobs.requeue_expired()
            elif op == "retry":
                jobs.retry(job_id)
            elif op == "register":
                workers.register(worker, "h", gpu_ids=[w])
            else:
                workers.stopped(worker, "bye")
        except WhirrError:
            pass
    incremental = {
        "jobs": {j.id: j for j in store.jobs()},
        "runs": {r.id: r for r in store.runs()},
        "workers": {w.id: w for w in store.workers()},
    }
    replayed = fold(store.read())
    assert {name: replayed[name] for name in incremental} == incremental
    store.rebuild()
    assert {j.id: j for j in store.jobs()} == incremental["jobs"]


def test_worker_view_tracks_current_job_and_liveness() -> None:
    recs = [
        Recorded(1, T0, "worker-a", WorkerRegistered(worker_id="a", hostname="h")),
        Recorded(
            2,
            T0 + timedelta(seconds=5),
            "job-1",
            JobClaimed(job_id=1, worker_id="a", attempt=1, lease_expires_at=T0),
        ),
    ]
    view: WorkerView = fold(recs)["workers"]["a"]
    assert (view.status, view.current_job_ids) == ("busy", [1])
    assert view.is_online(T0 + timedelta(seconds=10), timeout_seconds=30)
    assert not view.is_online(T0 + timedelta(seconds=60), timeout_seconds=30)
    recs.append(
        Recorded(
            3,
            T0 + timedelta(seconds=6),
            "job-1",
            JobFinished(job_id=1, attempt=1, outcome="completed", worker_id="a", exit_code=0),
        )
    )
    assert fold(recs)["workers"]["a"].status == "idle"


def test_events_for_unknown_entities_are_ignored() -> None:
    recs = [Recorded(1, T0, "job-9", JobFinished(job_id=9, attempt=1, outcome="failed"))]
    assert fold(recs)["jobs"] == {}
    assert Pending("s", recs[0].event).stream == "s"
