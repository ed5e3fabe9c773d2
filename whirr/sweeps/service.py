"""Sweep decisions: create a sweep (record it, queue its jobs), resume, list, report, cancel.

A sweep's state is its own stream (``sweep-<name>``) folded with the jobs' views; each
job joins the sweep in the same transaction that queues it (see ``whirr.studies.linking``).
"""

from __future__ import annotations

import secrets
from collections.abc import Sequence
from typing import Any

import msgspec

from whirr.events import (
    JobHeld,
    JobReleased,
    JobSubmitted,
    Pending,
    SweepCreated,
    SweepJobAdded,
    SweepResumed,
    job_stream,
)
from whirr.events.sweeps import sweep_stream
from whirr.projections import JobView
from whirr.projections.jobs import Queued
from whirr.services.errors import InvalidRequest, InvalidState, NotFound
from whirr.services.jobs import Jobs, check_runnable
from whirr.store import EventStore, ViewReader
from whirr.studies.linking import check_submit_options, submit_linked
from whirr.studies.results import JobOutcome, Results
from whirr.studies.streams import create_stream
from whirr.sweeps import bayes, expand, failfast, optuna_study
from whirr.sweeps.progress import Member, Progress, SweepRecord, best, fold, progress
from whirr.sweeps.spec import SweepSpec


class Row(msgspec.Struct, frozen=True):
    """One job of a sweep in a report: its outcome and its value on the chosen metric."""

    member: Member
    job: JobOutcome | None
    value: float | None = None


class SweepReport(msgspec.Struct, frozen=True):
    """A sweep's progress and, given a metric, its best run so far."""

    record: SweepRecord
    progress: Progress
    rows: list[Row]
    metric: str | None
    goal: str
    best: Row | None


def new_seed() -> int:
    """A seed for a random sweep given none; it is recorded, so the sweep can be redone."""
    return secrets.randbelow(2**31)


class Sweeps:
    """The sweep decisions over one store."""

    def __init__(self, store: EventStore) -> None:
        self.store = store

    def get(self, name: str) -> SweepRecord:
        """One sweep, or ``NotFound``."""
        record = fold(self.store.read(stream=sweep_stream(name)))
        if record is None:
            raise NotFound(f"no sweep named {name!r} (see `whirr sweeps`)")
        return record

    def all(self) -> list[SweepRecord]:
        """Every sweep, oldest first."""
        created = self.store.read(types=["sweep.created"])
        return [self.get(rec.event.sweep) for rec in created]  # type: ignore[attr-defined]

    def create(
        self,
        spec: SweepSpec,
        name: str,
        workdir: str,
        *,
        seed: int | None = None,
        source: str = "",
        options: dict[str, Any] | None = None,
        check: bool = True,
        fail_fast: int | None = None,
    ) -> tuple[SweepRecord, list[JobView]]:
        """Record sweep ``name`` and queue its jobs. A random sweep without a seed gets one.
        ``fail_fast`` (N jobs; 0: off) wins over the file's (``whirr.sweeps.failfast``).

        The name must be new: its jobs are ``<name>-<i>`` and tagged ``sweep:<name>``."""
        if spec.method in ("random", "bayes") and seed is None:
            seed = spec.seed if spec.seed is not None else new_seed()
        if spec.method == "bayes":
            try:
                optuna_study.require()
            except ModuleNotFoundError:  # a server without it: say so, not a 500
                raise InvalidRequest(
                    "method: bayes needs optuna where the sweep is recorded, which is not "
                    "installed there: pip install 'whirr[sweeps]'"
                ) from None
        planned = [] if spec.method == "bayes" else expand.plan(spec, name, seed)
        # A bayes sweep plans max_runs points but proposes them one by one.
        count = expand.check_size(spec) if spec.method == "bayes" else len(planned)
        submit_options = check_submit_options({**spec.submit, **(options or {})})
        if check and (planned or spec.method == "bayes"):
            check_runnable(planned[0].argv if planned else spec.argv, workdir)
        created = SweepCreated(
            sweep=name,
            program=spec.program,
            method=spec.method,
            parameters=spec.raw_parameters,
            planned=count,
            workdir=workdir,
            seed=seed if spec.method in ("random", "bayes") else None,
            max_runs=spec.max_runs,
            metric=spec.metric,
            goal=spec.goal,
            source=source,
            submit_options=submit_options,
            tags=spec.tags,
            fail_fast=spec.fail_fast if fail_fast is None else fail_fast,
            early_terminate=spec.early_terminate,
            max_concurrent=spec.max_concurrent,
        )
        create_stream(
            self.store,
            sweep_stream(name),
            created,
            taken=f"a sweep named {name!r} already exists; give this one another name with "
            "-p/--prefix (or `name:` in the file)",
        )
        if spec.method == "bayes":
            return self._propose(self.get(name))
        return self._submit(self.get(name), planned)

    def resume(self, name: str) -> tuple[SweepRecord, list[JobView]]:
        """Queue the jobs of an interrupted sweep that were never queued (same plan; a
        bayes sweep: its next points, up to ``max_concurrent`` queued or running).
        A paused sweep's held jobs are given back by ``release``."""
        record = self.get(name)
        if record.created.method == "bayes":
            if record.paused is not None:
                return record, []  # ``release`` first; the next ends propose again
            return self._propose(record)
        return self._submit(
            record, expand.plan(_spec_of(record.created), name, record.created.seed)
        )

    def release(self, name: str) -> list[int]:
        """Give a paused sweep's held jobs back to the workers (``sweep.resumed``); the
        ids released (none when the sweep is not paused)."""
        record = self.get(name)
        if record.paused is None:
            return []
        members = [m.job_id for m in record.members]

        def decide(reader: ViewReader) -> list[Pending]:
            held = []
            for job_id in members:
                job = reader.job(job_id)
                if job is not None and job.held is not None and isinstance(job.state, Queued):
                    held.append(job_id)
            return [
                *(Pending(job_stream(j), JobReleased(job_id=j)) for j in held),
                Pending(sweep_stream(name), SweepResumed(sweep=name, released=held)),
            ]

        recorded = self.store.transact(decide)
        return [r.event.job_id for r in recorded if isinstance(r.event, JobReleased)]

    def report(
        self, name: str, results: Results, metric: str | None = None, goal: str | None = None
    ) -> SweepReport:
        """Progress, every job with its metric value read from ``results``, and the best
        run on ``metric`` (default: the sweep file's ``metric``)."""
        return report(self.get(name), results, metric, goal)

    def cancel(self, name: str) -> list[int]:
        """Cancel the sweep's queued and running jobs; returns their ids."""
        jobs = Jobs(self.store)
        cancelled = []
        for member in self.get(name).members:
            job = self.store.job(member.job_id)
            if job is not None and job.status in ("queued", "running"):
                try:
                    jobs.cancel(member.job_id, reason=f"sweep {name} cancelled")
                except InvalidState:
                    continue  # it ended meanwhile
                cancelled.append(member.job_id)
        return cancelled

    # -- internals ------------------------------------------------------------
    def _propose(self, record: SweepRecord) -> tuple[SweepRecord, list[JobView]]:
        """Queue a bayes sweep's next points (``whirr.sweeps.bayes``), in one transaction
        so that an end recorded meanwhile never proposes the same room twice."""
        name = record.created.sweep
        watched = bayes.read_watch(self.store, name)
        if watched is None:
            return record, []

        def decide(reader: ViewReader) -> list[Pending]:
            return bayes.fill(reader, watched)

        recorded = self.store.transact(decide)
        ids = [r.event.job_id for r in recorded if isinstance(r.event, JobSubmitted)]
        jobs = [job for job in (self.store.job(i) for i in ids) if job is not None]
        return self.get(name), jobs

    def _submit(
        self, record: SweepRecord, planned: Sequence[expand.PlannedJob]
    ) -> tuple[SweepRecord, list[JobView]]:
        created = record.created
        done = {m.index for m in record.members}
        options = created.submit_options
        stream = sweep_stream(created.sweep)
        queued = []
        for job in planned:
            if job.index in done:
                continue
            hold = failfast.holding(self.store, created.sweep) if created.fail_fast else None

            def link(
                event: JobSubmitted, job: expand.PlannedJob = job, hold: str | None = hold
            ) -> list[Pending]:
                added = SweepJobAdded(
                    sweep=created.sweep, index=job.index, job_id=event.job_id, config=job.config
                )
                pending = [Pending(stream, added)]
                if hold is not None:
                    held = JobHeld(job_id=event.job_id, reason=hold)
                    pending.append(Pending(job_stream(event.job_id), held))
                return pending

            queued.append(
                submit_linked(
                    self.store,
                    link,
                    job.argv,
                    created.workdir,
                    name=job.name,
                    config=job.config,
                    tags=[f"sweep:{created.sweep}", *created.tags],
                    check=False,
                    **options,
                )
            )
        return self.get(created.sweep), queued


def report(
    record: SweepRecord, results: Results, metric: str | None = None, goal: str | None = None
) -> SweepReport:
    """A sweep's progress, every job with its value on ``metric`` (default: the file's)
    read from ``results``, and the best run so far."""
    metric = metric or record.created.metric
    goal = goal or record.created.goal
    rows = []
    for member in record.members:
        job = results.outcome(member.job_id)
        value = None
        if metric is not None and job is not None and job.started:
            value = results.metric(job.run_id, metric)
        rows.append(Row(member, job, value))
    statuses = {r.member.job_id: r.job.status for r in rows if r.job is not None}
    winner = best([(r.member, r.value) for r in rows], goal)
    best_row = next((r for r in rows if winner and r.member == winner[0]), None)
    return SweepReport(record, progress(record, statuses), rows, metric, goal, best_row)


def _spec_of(created: SweepCreated) -> SweepSpec:
    """The spec a recorded sweep was created from (to plan it again on resume)."""
    from whirr.sweeps.spec import parse_spec

    text = msgspec.json.encode(
        {
            "program": created.program,
            "method": created.method,
            "parameters": created.parameters,
            **({"max_runs": created.max_runs} if created.max_runs is not None else {}),
        }
    ).decode()
    try:
        return parse_spec(text, source=f"sweep {created.sweep}")
    except InvalidRequest as exc:  # recorded by another version with other rules
        raise InvalidState(f"cannot plan sweep {created.sweep} again: {exc}") from None
