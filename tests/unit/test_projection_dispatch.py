"""The fold's per-type dispatch (each projection declares the event types it folds, and
one table routes an event to them) equals the old fold, which asked every projection
about every event through chains of isinstance tests (``projection_reference``): on
random raw histories, folded whole (``fold``), in random batches (``fold_touched``, as a
store's transaction or a replay's batch folds them) and one by one (``fold_one``).

Raw events, not service calls: they reach every odd case the services avoid (a
heartbeat of a stale attempt or of an ended job, events of unknown jobs, runs and
workers, a worker heard from after it stopped, an empty worker id, a deleted run
started again, undecodable stand-ins on a job's stream)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import msgspec
import projection_reference as reference
from hypothesis import given, settings
from hypothesis import strategies as st

from whirr.events import (
    EVENT_TYPES,
    EventsVoided,
    JobCancelRequested,
    JobClaimed,
    JobCleaned,
    JobDependencyEnded,
    JobDependentAdded,
    JobFinished,
    JobHeartbeat,
    JobHeld,
    JobPriorityChanged,
    JobReleased,
    JobRequeued,
    JobRetryScheduled,
    JobStarted,
    JobSubmitted,
    JobUsage,
    ProjectCreated,
    ProjectRestored,
    QueuePaused,
    QueueResumed,
    Recorded,
    RunArchived,
    RunArtifactSaved,
    RunConfigUpdated,
    RunDeleted,
    RunFinished,
    RunNoteSet,
    RunRenamed,
    RunSizeWarning,
    RunStarted,
    RunSummaryUpdated,
    RunTagsAdded,
    RunTagsRemoved,
    RunUnarchived,
    SweepPaused,
    Unreadable,
    WorkerDrainRequested,
    WorkerRegistered,
    WorkerSeen,
    WorkerStopped,
)
from whirr.projections import PROJECTIONS, QUEUE, fold, fold_one, fold_touched, folding

T0 = datetime(2030, 1, 1, tzinfo=UTC)
_job = st.integers(1, 3)
_worker = st.sampled_from(["w1", "w1", "w2", ""])  # "": a job event naming no worker
_run = st.sampled_from(["r1", "r2"])
_attempt = st.integers(1, 3)
_at = st.integers(0, 600).map(lambda s: T0 + timedelta(seconds=s))
_maybe_at = st.none() | _at
_dict = st.dictionaries(st.sampled_from(["a", "b"]), st.integers(0, 3), max_size=2)
_tags = st.lists(st.sampled_from(["x", "y", "z"]), min_size=1, max_size=3)
_outcome = st.sampled_from(["completed", "failed", "cancelled", "timed_out"])
_code = st.none() | st.sampled_from([0, 1, -9])
_usage = st.none() | st.builds(JobUsage, cpu_seconds=st.floats(0, 10))
_text = st.sampled_from(["", "n1", "n2"])

EVENTS = st.one_of(
    st.builds(
        JobSubmitted,
        job_id=_job,
        command_argv=st.just(["true"]),
        workdir=st.just("/"),
        run_id=_run,
        first_attempt=_attempt,
        after=st.lists(_job, max_size=2),
        tags=_tags,
        config=_dict,
    ),
    st.builds(JobClaimed, job_id=_job, worker_id=_worker, attempt=_attempt, lease_expires_at=_at),
    st.builds(JobStarted, job_id=_job, worker_id=_worker, attempt=_attempt, pid=st.integers(1, 9)),
    st.builds(JobHeartbeat, job_id=_job, worker_id=_worker, attempt=_attempt, lease_expires_at=_at),
    st.builds(JobCancelRequested, job_id=_job),
    st.builds(
        JobFinished,
        job_id=_job,
        attempt=_attempt,
        outcome=_outcome,
        worker_id=_worker,
        exit_code=_code,
        usage=_usage,
    ),
    st.builds(JobRequeued, job_id=_job, attempt=_attempt, worker_id=_worker, reason=_text),
    st.builds(
        JobRetryScheduled,
        job_id=_job,
        attempt=_attempt,
        worker_id=_worker,
        not_before=_at,
        exit_code=_code,
    ),
    st.builds(JobPriorityChanged, job_id=_job, priority=st.integers(-2, 2)),
    st.builds(JobDependencyEnded, job_id=_job, dependency_id=_job, outcome=_outcome),
    st.builds(JobDependentAdded, job_id=_job, dependent_id=_job),
    st.builds(JobCleaned, job_id=_job),
    st.builds(JobHeld, job_id=_job, reason=st.sampled_from(["sweep paused", "x"])),
    st.builds(JobReleased, job_id=_job),
    st.builds(
        RunStarted,
        run_id=_run,
        run_dir=st.just(".whirr/runs/r"),
        job_id=st.none() | _job,
        name=st.none() | _text,
        config=_dict,
        tags=st.lists(st.sampled_from(["x", "y"]), max_size=2),
        pid=st.none() | st.integers(1, 9),
        git=st.none() | _dict,
        files_mode=st.none() | st.sampled_from(["shared", "local"]),
        started_at=_maybe_at,
    ),
    st.builds(RunSummaryUpdated, run_id=_run, summary=_dict),
    st.builds(
        RunArtifactSaved,
        run_id=_run,
        path=st.sampled_from(["a", "b/c"]),
        size=st.integers(0, 9),
        sha256=st.none() | st.just("0" * 64),
    ),
    st.builds(
        RunFinished,
        run_id=_run,
        status=st.sampled_from(["completed", "failed", "killed"]),
        exit_code=_code,
        finished_at=_maybe_at,
    ),
    st.builds(RunRenamed, run_id=_run, name=st.sampled_from(["a", "b"])),
    st.builds(RunTagsAdded, run_id=_run, tags=_tags),
    st.builds(RunTagsRemoved, run_id=_run, tags=_tags),
    st.builds(RunNoteSet, run_id=_run, text=_text, append=st.booleans()),
    st.builds(RunArchived, run_id=_run),
    st.builds(RunUnarchived, run_id=_run),
    st.builds(RunDeleted, run_id=_run),
    st.builds(RunConfigUpdated, run_id=_run, config=_dict),
    st.builds(RunSizeWarning, run_id=_run, size=st.integers(0, 9), limit=st.integers(0, 9)),
    st.builds(
        WorkerRegistered,
        worker_id=_worker,
        hostname=st.just("h"),
        gpu_ids=st.lists(st.integers(0, 3), max_size=2),
        slots=st.integers(0, 2),
    ),
    st.builds(WorkerSeen, worker_id=_worker),
    st.builds(WorkerStopped, worker_id=_worker),
    st.builds(WorkerDrainRequested, worker_id=_worker),
    st.builds(QueuePaused, reason=_text),
    st.builds(QueueResumed),
    st.builds(ProjectCreated, project_id=st.just("p"), job_id_floor=st.integers(0, 9)),
    st.builds(
        ProjectRestored,
        source=st.just("s"),
        backup_position=st.integers(0, 9),
        job_id_floor=st.integers(0, 9),
    ),
    st.builds(Unreadable, event_type=st.just("job.claimed"), error=st.just("x"), data=_text),
    # Types no projection folds: routed nowhere, by both folds.
    st.builds(EventsVoided, positions=st.lists(st.integers(1, 9), max_size=2)),
    st.builds(SweepPaused, sweep=st.just("s1"), reason=_text),
)

# Most histories start with the jobs, runs and workers their events name, so that those
# events find views to change (without, most would be ignored as of unknown ids).
PRELUDE = [
    *(WorkerRegistered(worker_id=w, hostname="h") for w in ("w1", "w2")),
    *(
        JobSubmitted(job_id=j, command_argv=["true"], workdir="/", run_id=f"r{j}")
        for j in (1, 2, 3)
    ),
    *(RunStarted(run_id=r, run_dir=".whirr/runs/r") for r in ("r1", "r2")),
]

# A history: events with their stream and the seconds since the previous one (0: appended
# together, as one transaction's events share a time).
HISTORIES = st.tuples(
    st.booleans(),
    st.lists(
        st.tuples(
            EVENTS,
            st.sampled_from(["job-1", "job-9", "run-r1", "worker-w1"]),
            st.integers(0, 2),
        ),
        max_size=120,
    ),
)


def _recorded(drawn: tuple[bool, list[tuple[Any, str, int]]]) -> list[Recorded]:
    prelude, history = drawn
    if prelude:
        history = [(event, "x", 1) for event in PRELUDE] + history
    at, records = T0, []
    for position, (event, stream, gap) in enumerate(history, 1):
        at += timedelta(seconds=gap)
        records.append(Recorded(position, at, stream, event))
    return records


@settings(max_examples=400, deadline=None)
@given(HISTORIES)
def test_fold_equals_the_reference_fold(history: tuple[bool, list[tuple[Any, str, int]]]) -> None:
    records = _recorded(history)
    assert fold(records) == reference.fold(records)


@settings(max_examples=200, deadline=None)
@given(HISTORIES, st.lists(st.integers(1, 12), min_size=1, max_size=20))
def test_fold_touched_in_batches_equals_the_reference_fold(
    history: tuple[bool, list[tuple[Any, str, int]]], sizes: list[int]
) -> None:
    """Batches of random sizes, each folded against the views the earlier ones left (as
    a replay's batches and a store's transactions are)."""
    records = _recorded(history)
    views: dict[tuple[str, Any], Any] = {}
    start, turn = 0, 0
    while start < len(records):
        size = sizes[turn % len(sizes)]
        batch = records[start : start + size]
        views.update(fold_touched(batch, lambda name, key: views.get((name, key))))
        start, turn = start + size, turn + 1
    expected = reference.fold(records)
    assert views == {(name, k): v for name, table in expected.items() for k, v in table.items()}
    one_by_one: dict[str, dict[Any, Any]] = {p.name: {} for p in PROJECTIONS}
    for rec in records:
        fold_one(one_by_one, rec)
    assert one_by_one == expected


def test_every_event_type_is_routed_where_the_reference_sent_it() -> None:
    """Each event type goes to the projections whose key the reference gave it (an
    instance of each type with its ids set), and an undecodable one to the queue's only:
    no type is lost to a projection that forgot to declare it."""
    ids = {"job_id": 1, "run_id": "r1", "worker_id": "w1"}
    for kind in (*EVENT_TYPES, Unreadable):
        # Structs do not check types when built: the ids are all a key looks at.
        values = {
            f.name: ids.get(f.name)
            for f in msgspec.structs.fields(kind)
            if f.required or f.name in ids
        }
        event = kind(**values)
        rec = Recorded(1, T0, "job-1", event)
        keyed = {name for name, key, _ in reference.PROJECTIONS if key(event) is not None}
        if isinstance(event, Unreadable):
            keyed = {QUEUE.name}
        assert {p.name for p in folding(rec)} == keyed, kind
