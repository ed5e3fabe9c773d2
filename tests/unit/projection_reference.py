"""The projections' fold as it was before the per-type dispatch (commit a4c6b75): one
``apply`` per projection testing the event's type in a chain, every projection asked
for every event's key. Kept as the slow, obvious reference the fast fold in
``whirr.projections`` must equal (tests/unit/test_projection_dispatch.py). Frozen: do
not change it to follow the projections; a new event type is compared on the types
this reference knows, and the dispatch test says which it leaves out."""

from __future__ import annotations

import re
from typing import Any

import msgspec

from whirr.events import (
    Event,
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
    ProjectCreated,
    ProjectRestored,
    QueuePaused,
    QueueResumed,
    Recorded,
    RunArtifactSaved,
    RunFinished,
    RunSizeWarning,
    RunStarted,
    RunSummaryUpdated,
    Unreadable,
    WorkerDrainRequested,
    WorkerRegistered,
    WorkerSeen,
    WorkerStopped,
)
from whirr.projections.jobs import Ended, JobState, JobView, Queued, Running
from whirr.projections.queue_state import QUEUE_KEY, QueueView
from whirr.projections.run_manage import DELETED, MANAGE_EVENTS, changes
from whirr.projections.runs import Artifact, RunView, SizeWarning
from whirr.projections.workers import WorkerView


# -- jobs (whirr/projections/jobs.py) --------------------
def jobs_key(event: Event) -> int | None:
    """The job an event belongs to, or None if it is not a job event."""
    return getattr(event, "job_id", None) if type(event) in _JOBS_HANDLED else None


def jobs_apply(view: JobView | None, rec: Recorded) -> JobView | None:
    """Fold one recorded event into the job's view (pure)."""
    event = rec.event
    at = rec.recorded_at
    if isinstance(event, JobSubmitted):
        return JobView(
            id=event.job_id,
            name=event.name,
            command_argv=event.command_argv,
            workdir=event.workdir,
            config=event.config,
            tags=event.tags,
            run_id=event.run_id,
            parent_job_id=event.parent_job_id,
            created_at=at,
            attempt=event.first_attempt,
            first_attempt=event.first_attempt,
            max_attempts=event.max_attempts,
            priority=event.priority,
            env=event.env,
            state=Queued(since=at),
            version=rec.position,
            gpus=event.gpus,
            after=event.after,
            after_any=event.after_any,
            waiting_on=sorted(set(event.after)),
            retries=event.retries,
            retry_delay=event.retry_delay,
            timeout_seconds=event.timeout_seconds,
            snapshot=event.snapshot,
            memory_bytes=event.memory_bytes,
            cpus=event.cpus,
        )
    if view is None:
        return None  # an event for a job we never saw submitted: ignore, never crash
    state = view.state
    new_state: JobState = state
    changes: dict[str, Any] = {}
    if isinstance(event, JobClaimed):
        new_state = Running(
            worker_id=event.worker_id,
            claimed_at=at,
            lease_expires_at=event.lease_expires_at,
            gpu_ids=event.gpu_ids,
        )
        changes["attempt"] = event.attempt
    elif isinstance(event, JobStarted):
        if isinstance(state, Running) and event.attempt == view.attempt:
            new_state = msgspec.structs.replace(state, started_at=at, pid=event.pid)
    elif isinstance(event, JobHeartbeat):
        if isinstance(state, Running) and event.attempt == view.attempt:
            new_state = msgspec.structs.replace(state, lease_expires_at=event.lease_expires_at)
    elif isinstance(event, JobCancelRequested):
        changes["cancel_requested"] = True
    elif isinstance(event, JobFinished):
        new_state = Ended(
            outcome=event.outcome,
            finished_at=at,
            worker_id=event.worker_id or None,
            started_at=state.started_at if isinstance(state, Running) else None,
            exit_code=event.exit_code,
            error=event.error,
            usage=event.usage,
        )
    elif isinstance(event, JobHeld):
        if not isinstance(state, Queued):
            return view  # only a queued job can be held (no decision holds another)
        changes["held"] = event.reason
    elif isinstance(event, JobReleased):
        changes["held"] = None
    elif isinstance(event, JobRequeued):
        new_state = Queued(since=at)
        changes["attempt"] = event.attempt + 1
    elif isinstance(event, JobRetryScheduled):
        new_state = Queued(since=at, not_before=event.not_before)
        changes["attempt"] = event.attempt + 1
        changes["failed_attempts"] = view.failed_attempts + 1
    elif isinstance(event, JobPriorityChanged):
        changes["priority"] = event.priority
    elif isinstance(event, JobDependencyEnded):
        changes["waiting_on"] = [j for j in view.waiting_on if j != event.dependency_id]
    elif isinstance(event, JobDependentAdded):
        changes["dependents"] = sorted({*view.dependents, event.dependent_id})
    elif isinstance(event, JobCleaned):
        if not isinstance(state, Ended):
            return view  # only an ended job leaves the queue's views
        changes["cleaned"] = True
    if isinstance(new_state, Ended):
        changes["held"] = None  # an ended job is kept from nobody
    return msgspec.structs.replace(view, state=new_state, version=rec.position, **changes)


_JOBS_HANDLED = frozenset(
    {
        JobSubmitted,
        JobClaimed,
        JobStarted,
        JobHeartbeat,
        JobCancelRequested,
        JobFinished,
        JobRequeued,
        JobRetryScheduled,
        JobPriorityChanged,
        JobDependencyEnded,
        JobDependentAdded,
        JobCleaned,
        JobHeld,
        JobReleased,
    }
)


# -- runs (whirr/projections/runs.py) --------------------
def runs_key(event: Event) -> str | None:
    """The run an event belongs to, or None."""
    return getattr(event, "run_id", None) if type(event) in _RUNS_HANDLED else None


def runs_apply(view: RunView | None, rec: Recorded) -> RunView | None:
    """Fold one recorded event into the run's view (pure)."""
    event = rec.event
    if view is not None and view.status == DELETED:
        # The tombstone stays whatever comes after: readers never return it, and a later
        # start with its id (refused by ``Runs.start``; an older client's, or one that
        # raced the delete) must not bring the run back, live or in a rebuild.
        return view
    if isinstance(event, RunStarted):
        if view is not None:
            # A second start for the same run: a tracked script attaching to its job's run,
            # or a resumed run. Keep what we had; fill in what the new start knows.
            return msgspec.structs.replace(
                view,
                name=event.name or view.name,
                config={**view.config, **event.config},
                tags=event.tags or view.tags,
                hostname=event.hostname or view.hostname,
                pid=event.pid if event.pid is not None else view.pid,
                git=event.git if event.git is not None else view.git,
                files_mode=event.files_mode or view.files_mode,
                worker_run_dir=event.worker_run_dir or view.worker_run_dir,
                status="running",
                finished_at=None,
                version=rec.position,
            )
        return RunView(
            id=event.run_id,
            job_id=event.job_id,
            name=event.name,
            config=event.config,
            tags=event.tags,
            status="running",
            started_at=event.started_at or rec.recorded_at,
            hostname=event.hostname,
            pid=event.pid,
            run_dir=event.run_dir,
            git=event.git,
            version=rec.position,
            files_mode=event.files_mode,
            worker_run_dir=event.worker_run_dir,
        )
    if view is None:
        return None
    if type(event) in MANAGE_EVENTS:
        return msgspec.structs.replace(view, version=rec.position, **changes(view, event))
    if isinstance(event, RunSummaryUpdated):
        return msgspec.structs.replace(
            view, summary={**view.summary, **event.summary}, version=rec.position
        )
    if isinstance(event, RunArtifactSaved):
        kept = [a for a in view.artifacts if a.path != event.path]
        kept.append(
            Artifact(
                path=event.path,
                size=event.size,
                saved_at=rec.recorded_at,
                sha256=event.sha256,
                location=event.location,
            )
        )
        return msgspec.structs.replace(view, artifacts=kept, version=rec.position)
    if isinstance(event, RunFinished):
        if view.finished_at is not None and view.status != "running":
            return view  # the first true end wins (a worker and the script may both report)
        return msgspec.structs.replace(
            view,
            status=event.status,
            finished_at=event.finished_at or rec.recorded_at,
            exit_code=event.exit_code,
            error=event.error,
            version=rec.position,
        )
    if isinstance(event, RunSizeWarning):  # added with the event (issue 19 item 3)
        warning = SizeWarning(size=event.size, limit=event.limit, at=rec.recorded_at)
        return msgspec.structs.replace(view, size_warning=warning, version=rec.position)
    return view


_RUNS_HANDLED = frozenset(
    {RunStarted, RunSummaryUpdated, RunArtifactSaved, RunFinished, RunSizeWarning, *MANAGE_EVENTS}
)


# -- workers (whirr/projections/workers.py) --------------------
def workers_key(event: Event) -> str | None:
    """The worker an event concerns, or None."""
    if type(event) in _WORKERS_HANDLED:
        return getattr(event, "worker_id", None) or None
    return None


def workers_apply(view: WorkerView | None, rec: Recorded) -> WorkerView | None:
    """Fold one recorded event into the worker's view (pure)."""
    event = rec.event
    at = rec.recorded_at
    if isinstance(event, WorkerRegistered):
        return WorkerView(
            id=event.worker_id,
            hostname=event.hostname,
            pid=event.pid,
            gpu_ids=event.gpu_ids,
            slots=event.slots,
            stopped=False,
            registered_at=at,
            heartbeat_at=at,
            version=rec.position,
        )
    if view is None:
        return None
    jobs = view.current_job_ids
    if isinstance(event, JobClaimed) and event.job_id not in jobs:
        jobs = [*jobs, event.job_id]
    elif isinstance(event, JobFinished | JobRequeued | JobRetryScheduled):
        jobs = [j for j in jobs if j != event.job_id]
    stopped = isinstance(event, WorkerStopped) or (
        view.stopped and not isinstance(event, WorkerSeen | JobClaimed | JobHeartbeat)
    )
    return msgspec.structs.replace(
        view,
        # A requeue is recorded by whoever noticed the lost lease, a drain request by the
        # user: neither says the worker is alive.
        heartbeat_at=(
            view.heartbeat_at if isinstance(event, JobRequeued | WorkerDrainRequested) else at
        ),
        current_job_ids=[] if isinstance(event, WorkerStopped) else jobs,
        stopped=stopped,
        version=rec.position,
        draining=view.draining or isinstance(event, WorkerDrainRequested),
    )


_WORKERS_HANDLED = frozenset(
    {
        WorkerRegistered,
        WorkerSeen,
        WorkerStopped,
        JobClaimed,
        JobHeartbeat,
        JobFinished,
        JobRequeued,
        JobRetryScheduled,
        WorkerDrainRequested,
    }
)


# -- queue_state (whirr/projections/queue_state.py) --------------------
_JOB_STREAM = re.compile(r"job-(\d{1,18})")


def queue_state_key(event: Event) -> str | None:
    """``"queue"`` for queue-wide events (and those that raise the job id floor), else
    None. An ``Unreadable`` is seen only here: the other projections skip it."""
    queue_wide = QueuePaused | QueueResumed | ProjectCreated | ProjectRestored | Unreadable
    return QUEUE_KEY if isinstance(event, queue_wide) else None


def queue_state_apply(view: QueueView | None, rec: Recorded) -> QueueView | None:
    """Fold a pause, a resume or a job id floor into the queue's view (pure)."""
    event = rec.event
    floor = view.job_id_floor if view is not None else 0
    if isinstance(event, QueuePaused):
        return QueueView(
            paused=True,
            since=rec.recorded_at,
            reason=event.reason,
            version=rec.position,
            job_id_floor=floor,
        )
    if isinstance(event, QueueResumed):
        return QueueView(
            paused=False, since=rec.recorded_at, version=rec.position, job_id_floor=floor
        )
    used = 0
    if isinstance(event, ProjectCreated | ProjectRestored):
        used = event.job_id_floor
    elif isinstance(event, Unreadable) and (m := _JOB_STREAM.fullmatch(rec.stream)):
        used = int(m.group(1))
    if used > floor:
        return msgspec.structs.replace(view or QueueView(), job_id_floor=used)
    return view


# -- the fold (whirr/projections/__init__.py) -----------------------
PROJECTIONS = (
    ("jobs", jobs_key, jobs_apply),
    ("runs", runs_key, runs_apply),
    ("workers", workers_key, workers_apply),
    ("queue", queue_state_key, queue_state_apply),
)


def fold(records: list[Recorded]) -> dict[str, dict[Any, Any]]:
    """Every record through every projection (a stand-in of an undecodable event through
    the queue's only), as the fold did before the dispatch table."""
    views: dict[str, dict[Any, Any]] = {name: {} for name, _, _ in PROJECTIONS}
    for rec in records:
        folding = PROJECTIONS if not isinstance(rec.event, Unreadable) else PROJECTIONS[3:]
        for name, key, apply in folding:
            k = key(rec.event)
            if k is None:
                continue
            new = apply(views[name].get(k), rec)
            if new is not None:
                views[name][k] = new
    return views
