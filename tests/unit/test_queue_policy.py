"""The pure claim policy (whirr.projections.queue), tested with hypothesis: no GPU is ever
assigned twice at once, priority order holds within what fits, dependencies are respected,
nothing schedulable starves."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import msgspec
from hypothesis import given, settings
from hypothesis import strategies as st

from whirr.projections.jobs import Ended, JobView, Queued, Running
from whirr.projections.queue import (
    Capacity,
    claim_order,
    fits,
    free_capacity,
    gpus_needed,
    is_ready,
    pick,
    unschedulable,
)
from whirr.projections.workers import WorkerView

T0 = datetime(2026, 1, 1, tzinfo=UTC)
NEVER = float("inf")


def job(
    job_id: int,
    *,
    priority: int = 0,
    gpus: int | None = None,
    since: datetime = T0,
    waiting_on: list[int] | None = None,
    not_before: datetime | None = None,
) -> JobView:
    return JobView(
        id=job_id,
        name=None,
        command_argv=["true"],
        workdir="/",
        config={},
        tags=[],
        run_id=f"job-{job_id}",
        parent_job_id=None,
        created_at=since,
        attempt=1,
        first_attempt=1,
        max_attempts=3,
        priority=priority,
        state=Queued(since=since, not_before=not_before),
        gpus=gpus,
        waiting_on=waiting_on or [],
    )


def running(view: JobView, gpu_ids: tuple[int, ...], at: datetime = T0) -> JobView:
    state = Running(worker_id="w", claimed_at=at, lease_expires_at=at, gpu_ids=list(gpu_ids))
    return msgspec.structs.replace(view, state=state)


# -- single decisions ------------------------------------------------------------------


def test_default_gpu_need_depends_on_the_worker() -> None:
    gpu, cpu = Capacity((0, 1), 1), Capacity((), 2)
    assert (gpus_needed(job(1), gpu), gpus_needed(job(1), cpu)) == (1, 0)
    assert gpus_needed(job(1, gpus=0), gpu) == 0
    assert not fits(job(1, gpus=3), gpu) and fits(job(1, gpus=2), gpu)
    assert not fits(job(1, gpus=0), Capacity((0,), 0))


def test_lowest_free_gpus_are_assigned_and_cpu_jobs_take_slots() -> None:
    capacity = Capacity((0, 1, 2, 3), 1)
    held = [running(job(9, gpus=1), (0,)), running(job(8, gpus=0), ())]
    free = free_capacity(capacity, held)
    assert free == Capacity((1, 2, 3), 0)
    choice = pick([job(1, gpus=2), job(2, gpus=0)], capacity, free)
    assert choice is not None and (choice.job.id, choice.gpu_ids) == (1, (1, 2))
    # No slot left: the CPU-only job waits even though GPUs are free.
    assert pick([job(2, gpus=0)], capacity, free) is None


def test_not_ready_jobs_are_never_picked() -> None:
    later = T0 + timedelta(seconds=30)
    blocked = job(1, waiting_on=[7])
    backing_off = job(2, not_before=later)
    cancelling = msgspec.structs.replace(job(3), cancel_requested=True)
    assert pick([blocked, backing_off, cancelling], Capacity(), now=T0) is None
    assert not is_ready(backing_off, T0) and is_ready(backing_off, later)
    assert pick([backing_off], Capacity(), now=later) is not None


def test_an_aged_job_that_does_not_fit_reserves_the_gpus() -> None:
    capacity = Capacity((0, 1, 2, 3), 1)
    free = Capacity((2, 3), 1)  # two of four busy
    big = job(1, gpus=4, since=T0)
    small, cpu = job(2, gpus=1, since=T0), job(3, gpus=0, since=T0)
    soon = T0 + timedelta(seconds=10)
    # Young: the small job backfills a free GPU.
    assert pick([big, small, cpu], capacity, free, soon, reserve_after=60).job.id == 2  # type: ignore[union-attr]
    # Aged: no GPU goes to a job behind it, but the CPU slot is still used.
    late = T0 + timedelta(seconds=61)
    assert pick([big, small, cpu], capacity, free, late, reserve_after=60).job.id == 3  # type: ignore[union-attr]
    assert pick([big, small], capacity, free, late, reserve_after=60) is None


def test_unschedulable_names_the_biggest_worker() -> None:
    def worker(gpus: list[int], slots: int = 1) -> WorkerView:
        return WorkerView(
            id="w",
            hostname="h",
            pid=1,
            gpu_ids=gpus,
            slots=slots,
            stopped=False,
            registered_at=T0,
            heartbeat_at=T0,
        )

    live = [worker([0, 1]), worker([])]
    assert unschedulable(job(1, gpus=4), live) == "needs 4 GPU(s); the largest live worker has 2"
    assert unschedulable(job(1, gpus=2), live) is None
    assert unschedulable(job(1, gpus=4), []) is None  # no live worker: nothing to compare
    assert "CPU slot" in (unschedulable(job(1, gpus=0), [worker([0], slots=0)]) or "")


# -- properties --------------------------------------------------------------------------

job_specs = st.lists(
    st.tuples(
        st.integers(-2, 2),  # priority
        st.sampled_from([None, 0, 1, 2, 4]),  # gpus
        st.integers(1, 4),  # duration (ticks)
        st.integers(0, 3),  # submitted at tick
    ),
    min_size=1,
    max_size=20,
)
capacities = st.builds(
    Capacity,
    st.sampled_from([(), (0,), (0, 1), (0, 1, 2, 3)]),
    st.integers(0, 2),
)


@settings(max_examples=200, deadline=None)
@given(
    st.lists(st.tuples(st.integers(-3, 3), st.sampled_from([None, 0, 1, 2, 3])), max_size=15),
    capacities,
    st.data(),
)
def test_choice_is_first_in_claim_order_among_what_fits(specs, capacity, data) -> None:
    candidates = [job(i + 1, priority=p, gpus=g) for i, (p, g) in enumerate(specs)]
    free = Capacity(
        tuple(
            data.draw(st.lists(st.sampled_from(capacity.gpu_ids), unique=True))
            if capacity.gpu_ids
            else ()
        ),
        data.draw(st.integers(0, capacity.slots)),
    )
    choice = pick(candidates, capacity, free, now=T0, reserve_after=NEVER)

    def fits_now(j: JobView) -> bool:
        need = gpus_needed(j, capacity)
        return fits(j, capacity) and (need <= len(free.gpu_ids) if need else free.slots > 0)

    fitting = sorted((j for j in candidates if fits_now(j)), key=claim_order)
    if not fitting:
        assert choice is None
        return
    assert choice is not None and choice.job.id == fitting[0].id
    assert len(choice.gpu_ids) == gpus_needed(choice.job, capacity)
    assert set(choice.gpu_ids) <= set(free.gpu_ids)


@settings(max_examples=150, deadline=None)
@given(job_specs, capacities, st.data())
def test_simulated_queue_never_double_books_respects_deps_and_drains(specs, capacity, data):
    """Run a whole queue on one worker in simulated time: at every tick the worker claims
    what ``pick`` gives it until nothing fits, running jobs end after their duration."""
    # Dependencies point at earlier jobs only (as `--after` does: they must exist).
    deps = {
        i + 1: data.draw(st.lists(st.integers(1, i), unique=True, max_size=2)) if i else []
        for i in range(len(specs))
    }
    reserve_after = data.draw(st.sampled_from([0.0, 2.0, NEVER]))
    tick = timedelta(seconds=1)
    views = {
        i + 1: job(i + 1, priority=p, gpus=g, since=T0 + at * tick, waiting_on=list(deps[i + 1]))
        for i, (p, g, _, at) in enumerate(specs)
    }
    duration = {i + 1: d for i, (_, _, d, _) in enumerate(specs)}
    submitted_at = {i + 1: at for i, (_, _, _, at) in enumerate(specs)}
    ends: dict[int, int] = {}  # running job -> tick it ends
    started: dict[int, int] = {}
    completed: set[int] = set()
    runnable = {j for j in views if fits(views[j], capacity)}
    for t in range(400):
        now = T0 + t * tick
        for j in [j for j, end in ends.items() if end <= t]:
            del ends[j]
            completed.add(j)
            views[j] = msgspec.structs.replace(
                views[j], state=Ended(outcome="completed", finished_at=now)
            )
            for k, v in views.items():
                if j in v.waiting_on:
                    views[k] = msgspec.structs.replace(
                        v, waiting_on=[d for d in v.waiting_on if d != j]
                    )
        while True:
            held = [views[j] for j in ends]
            free = free_capacity(capacity, held)
            visible = [v for j, v in views.items() if submitted_at[j] <= t]
            choice = pick(visible, capacity, free, now, reserve_after)
            if choice is None:
                break
            j = choice.job.id
            assert set(choice.gpu_ids) <= set(free.gpu_ids), "a GPU assigned twice at once"
            assert all(d in completed for d in deps[j]), "started before a dependency ended"
            assert j in runnable
            views[j] = running(views[j], choice.gpu_ids, now)
            ends[j] = t + duration[j]
            started[j] = t
        busy = [g for j in ends for g in views[j].state.gpu_ids]  # type: ignore[union-attr]
        assert len(busy) == len(set(busy))
        if set(started) == runnable_closure(runnable, deps):
            break
    assert set(started) == runnable_closure(runnable, deps), "a schedulable job starved"


def runnable_closure(runnable: set[int], deps: dict[int, list[int]]) -> set[int]:
    """Jobs that can run: they fit the worker, and so do all their dependencies'."""
    ok: set[int] = set()
    for j in sorted(deps):
        if j in runnable and all(d in ok for d in deps[j]):
            ok.add(j)
    return ok
