"""``method: bayes`` and ``early_terminate``: the sweep's next points proposed as its jobs
end, and running jobs whose metric lags cancelled with reason ``pruned``.

There is no coordinator (local mode has none). Like fail-fast (``whirr.sweeps.failfast``):

- whoever records a sweep job's end (a local worker's write, or a server) proposes the
  next point in the same transaction: a ``job.submitted`` with the point as its config
  and its ``sweep.job_added``. Two ends recorded at once never propose twice, and at
  most ``max_concurrent`` of the sweep's jobs are queued or running;
- whoever records a running job's heartbeat (the local worker's, or the server's on a
  remote worker's heartbeat) asks the pruner about its metric so far, and appends the
  cancel request (reason ``pruned``) with the heartbeat, which tells the worker to stop
  it. The job then ends ``cancelled`` with error ``pruned``.

The study is never stored: each question replays the sweep's points (configs from the
log, values from the runs' ``metrics.jsonl`` and summaries) into a fresh Optuna study
(``whirr.sweeps.optuna_study``). A point's value is its run's summary value of the
metric, else the last value it logged; its steps are the rows' ``step`` (else their
index). A run whose files cannot be read here (a server that does not see a remote
worker's files) counts as failed: the search goes on without its value, and it is
never pruned.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import msgspec

from whirr.events import (
    JobCancelRequested,
    JobFinished,
    JobSubmitted,
    Pending,
    SweepCreated,
    SweepJobAdded,
    SweepPaused,
    job_stream,
)
from whirr.events.sweeps import sweep_stream
from whirr.projections import RunView
from whirr.projections.jobs import Ended
from whirr.services.outcomes import link_dependencies
from whirr.store import EventStore, ViewReader
from whirr.sweeps.failfast import sweeps_of
from whirr.sweeps.optuna_study import Trial, TrialState
from whirr.sweeps.progress import Member, SweepRecord, fold

if TYPE_CHECKING:
    from whirr.sweeps.spec import Parameter

#: The cancel reason (and the ended job's error) of a pruned job.
PRUNED = "pruned"


class Watch(msgspec.Struct, frozen=True):
    """A sweep whose next point an end may propose, as read before the transaction."""

    record: SweepRecord
    parameters: list[Parameter]
    #: The largest job id before ``record`` was read: a member queued since (by an end
    #: recorded meanwhile) has a larger one, and is found among those in the transaction.
    since: int


def read_watch(store: EventStore, name: str) -> Watch | None:
    """The sweep as read before a transaction that may propose its next points."""
    since = store.max_job_id()
    record = fold(store.read(stream=sweep_stream(name)))
    if record is None:
        return None
    from whirr.sweeps.spec import SweepFileError

    try:
        return Watch(record, parameters_of(record.created), since)
    except SweepFileError:
        return None  # recorded by a version with other rules: propose nothing


def caught_up(reader: ViewReader, watched: Watch) -> SweepRecord:
    """Inside the transaction: the sweep's members, with those queued since ``watched``
    was read (the log cannot be read in a transaction; the views can)."""
    record = watched.record
    known = {m.job_id for m in record.members}
    tag = f"sweep:{record.created.sweep}"
    prefix = f"{record.created.sweep}-"
    added = []
    for job_id in range(watched.since + 1, reader.max_job_id() + 1):
        view = reader.job(job_id)
        if view is None or job_id in known or tag not in view.tags:
            continue
        suffix = (view.name or "").removeprefix(prefix)
        if suffix.isdigit():
            added.append(Member(int(suffix), job_id, view.config))
    if not added:
        return record
    return msgspec.structs.replace(record, members=[*record.members, *added])


def parameters_of(created: SweepCreated) -> list[Parameter]:
    """The swept parameters of a recorded sweep (as its file gave them); raises
    ``SweepFileError`` for one recorded by a version with other rules."""
    # Imported here: the spec's errors import the services, which import this module.
    from whirr.sweeps.spec import parse_spec

    text = msgspec.json.encode(
        {
            "program": created.program,
            "method": "random",  # the method that takes every kind of parameter
            "max_runs": 1,
            "parameters": created.parameters,
        }
    ).decode()
    return parse_spec(text, source=f"sweep {created.sweep}").parameters


def _created_of(store: EventStore, name: str) -> SweepCreated | None:
    """The sweep's ``sweep.created`` (one indexed read of its stream)."""
    found = store.read(stream=sweep_stream(name), types=["sweep.created"])
    event = found[0].event if found else None
    return event if isinstance(event, SweepCreated) else None


# -- reading a point's metric ---------------------------------------------------
def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    number = float(value)
    return number if math.isfinite(number) else None


def logged_steps(run: RunView | None, metric: str) -> dict[int, float] | None:
    """The run's ``metric`` by step (the last value logged at each), read from its
    ``metrics.jsonl``; None when the run's files cannot be seen from here."""
    if run is None:
        return None
    path = Path(run.run_dir) / "metrics.jsonl"
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return {} if Path(run.run_dir).is_dir() else None
    except OSError:
        return None
    steps: dict[int, float] = {}
    for line in data.splitlines():
        try:
            row = msgspec.json.decode(line)
        except msgspec.DecodeError:
            continue  # a torn last line, or a garbled one
        if not isinstance(row, dict):
            continue
        value = _number(row.get(metric))
        step = row.get("step", row.get("_idx"))
        if value is not None and isinstance(step, int) and not isinstance(step, bool):
            steps[step] = value
    return steps


def trial_of(
    reader: ViewReader,
    member: Member,
    metric: str,
    ending: Mapping[int, JobFinished] | None = None,
) -> Trial:
    """Point ``member`` as the study sees it: complete with its value, pruned, failed
    (no value, or its files cannot be read here) or running (queued too)."""
    view = reader.job(member.job_id)
    ended = (ending or {}).get(member.job_id)
    status: str
    error: str | None
    if ended is not None:
        status, error = ended.outcome, ended.error
    elif view is not None:
        status = view.status
        error = view.state.error if isinstance(view.state, Ended) else None
    else:
        status, error = "failed", None
    run = reader.run(view.run_id) if view is not None else None
    steps = logged_steps(run, metric) or {}
    value = _number(run.summary.get(metric)) if run is not None else None
    if value is None and steps:
        value = steps[max(steps)]
    state: TrialState
    if status in ("queued", "running"):
        state = "running"
    elif status == "completed" and value is not None:
        state = "complete"
    elif status == "cancelled" and error == PRUNED:
        state = "pruned"
    else:
        state = "failed"
    return Trial(member.index, member.config, state, value, steps)


# -- proposing the next points ----------------------------------------------------
def fill(
    reader: ViewReader, watched: Watch, ending: Mapping[int, JobFinished] | None = None
) -> list[Pending]:
    """Inside a transaction: the events that queue the sweep's next points, as many as
    keep ``max_concurrent`` of its jobs queued or running without passing ``max_runs``
    (``ending``: its jobs this transaction ends)."""
    from whirr.sweeps import optuna_study

    record = caught_up(reader, watched)
    parameters = watched.parameters
    created = record.created
    assert created.metric is not None
    ending = ending or {}
    trials = [trial_of(reader, m, created.metric, ending) for m in record.members]
    active = sum(t.state == "running" for t in trials)
    total = len(trials)
    room = min((created.max_concurrent or 1) - active, created.planned - total)
    pending: list[Pending] = []
    first_id = reader.max_job_id() + 1
    for k in range(max(room, 0)):
        index, job_id = total + k, first_id + k
        config = optuna_study.propose(
            parameters, trials, index=index, goal=created.goal, seed=created.seed or 0
        )
        pending += _submitted(reader, created, index, job_id, config)
        trials.append(Trial(index, config, "running"))
    return pending


def _submitted(
    reader: ViewReader, created: SweepCreated, index: int, job_id: int, config: dict[str, Any]
) -> list[Pending]:
    """Job ``job_id`` queued as point ``index`` (what ``Jobs.submit`` with the sweep's
    submit options records, and its ``sweep.job_added``)."""
    from whirr.sweeps.expand import command

    options = dict(created.submit_options)
    after = sorted(set(options.pop("after", [])))
    event = JobSubmitted(
        job_id=job_id,
        command_argv=command(_argv(created), config),
        workdir=created.workdir,
        run_id=f"job-{job_id}",
        name=f"{created.sweep}-{index}",
        config=config,
        tags=[f"sweep:{created.sweep}", *created.tags],
        after=after,
        **options,
    )
    added = SweepJobAdded(sweep=created.sweep, index=index, job_id=job_id, config=config)
    found = [reader.job(d) for d in after]
    return [
        Pending(job_stream(job_id), event),
        *link_dependencies(job_id, found, bool(options.get("after_any")), 1),
        Pending(sweep_stream(created.sweep), added),
    ]


def _argv(created: SweepCreated) -> list[str]:
    import shlex

    return shlex.split(created.program)


def watch(store: EventStore, job_id: int) -> Watch | None:
    """Before the transaction that may end ``job_id``: its bayes sweep, when it is one's
    member and the sweep has points left to propose; else None (the end costs nothing
    more)."""
    job = store.job(job_id)
    if job is None:
        return None
    for name in sweeps_of(job.tags):
        created = _created_of(store, name)
        if created is None or created.method != "bayes":
            continue
        watched = read_watch(store, name)
        if watched is None or job_id not in {m.job_id for m in watched.record.members}:
            continue
        record = watched.record
        if record.paused is not None or len(record.members) >= created.planned:
            return None
        return watched
    return None


def proposals(reader: ViewReader, watched: Watch, pending: Sequence[Pending]) -> list[Pending]:
    """Inside the transaction that appends ``pending``: the next points, when it ends a
    member of the sweep in a way that calls for one. A job cancelled otherwise than by
    the pruner (by hand, or its sweep cancelled) is not replaced, nor is any job of a
    sweep fail-fast pauses (in this transaction or before)."""
    members = {m.job_id for m in watched.record.members}
    ending = {
        p.event.job_id: p.event
        for p in pending
        if isinstance(p.event, JobFinished) and p.event.job_id in members
    }
    if not ending or any(isinstance(p.event, SweepPaused) for p in pending):
        return []
    if all(e.outcome == "cancelled" and e.error != PRUNED for e in ending.values()):
        return []
    try:
        return fill(reader, watched, ending)
    except Exception:
        # The end must be recorded whatever the search does. No Optuna where this end
        # is recorded, or a point Optuna refuses: the sweep stops proposing
        # (``incomplete``), and `whirr sweep resume` proposes again, saying why if it
        # fails the same way.
        return []


def around(
    store: EventStore, job_id: int, decision: Callable[[ViewReader], Sequence[Pending]]
) -> Callable[[ViewReader], Sequence[Pending]]:
    """``decision`` (one that may end job ``job_id``) followed, in the same transaction,
    by the next points of its bayes sweep; ``decision`` itself when none can follow."""
    watched = watch(store, job_id)
    if watched is None:
        return decision

    def with_proposals(reader: ViewReader) -> Sequence[Pending]:
        pending = list(decision(reader))
        return [*pending, *proposals(reader, watched, pending)]

    return with_proposals


def cancel_reason(store: EventStore, job_id: int) -> str | None:
    """``pruned`` when the running job's pending cancel came from the pruner (what its
    end records as its error), else None."""
    job = store.job(job_id)
    if job is None or not job.cancel_requested:
        return None
    found = store.read(stream=job_stream(job_id), types=["job.cancel_requested"])
    last = found[-1].event if found else None
    if isinstance(last, JobCancelRequested) and last.reason == PRUNED:
        return PRUNED
    return None


# -- pruning ---------------------------------------------------------------------
#: What each run's metrics file measured at its last check: a heartbeat with nothing new
#: logged since asks nothing (run dir -> size).
_checked: dict[str, int] = {}


def prune_check(store: EventStore, job_id: int) -> bool:
    """Before a heartbeat of running job ``job_id``: should the pruner stop it? Only for
    a sweep with ``early_terminate``, and only when the run logged something since the
    last check in this process. Never raises for want of Optuna or files."""
    job = store.job(job_id)
    if job is None or job.cancel_requested:
        return False
    for name in sweeps_of(job.tags):
        created = _created_of(store, name)
        if created is None or created.early_terminate is None or created.metric is None:
            continue
        run = store.run(job.run_id)
        if run is None or not _grew(run):
            return False
        record = fold(store.read(stream=sweep_stream(name)))
        if record is None:
            return False
        member = next((m for m in record.members if m.job_id == job_id), None)
        if member is None:
            continue
        return _pruned(store, record, member, created)
    return False


def _grew(run: RunView) -> bool:
    try:
        size = (Path(run.run_dir) / "metrics.jsonl").stat().st_size
    except OSError:
        return False
    if _checked.get(run.run_dir) == size:
        return False
    if len(_checked) >= 10_000:
        _checked.clear()
    _checked[run.run_dir] = size
    return True


def _pruned(store: EventStore, record: SweepRecord, member: Member, created: SweepCreated) -> bool:
    assert created.metric is not None and created.early_terminate is not None
    try:
        from whirr.sweeps import optuna_study

        parameters = parameters_of(created)
        trials = [trial_of(store, m, created.metric) for m in record.members]
        running = next(t for t in trials if t.index == member.index)
        others = [t for t in trials if t.index != member.index]
        if not running.steps:
            return False
        return optuna_study.pruned(
            parameters,
            others,
            running,
            goal=created.goal,
            early_terminate=created.early_terminate,
        )
    except Exception:  # a heartbeat must renew the lease whatever the pruner does
        return False
