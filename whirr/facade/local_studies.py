"""``StoreStudies``: sweeps and ablation studies over an event store and its run files.

Used by a project's commands and by ``whirr server`` (its ``/sweeps`` and ``/ablations``
routes call these methods on the server's own ``StoreWhirr``), so a sweep's report or a
study's ranking is worked out once, where the runs' files are, from every row of them.
Ablation config files (``{{cfg_path}}``) go beside the runs directory: a project's
``.whirr/ablations``, a server's ``<data-dir>/ablations`` (which its workers share).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import msgspec

from whirr.ablations.service import Ablations, Ranking
from whirr.ablations.state import Ablation
from whirr.projections import JobView
from whirr.services.errors import InvalidRequest
from whirr.services.render import job_out
from whirr.store import EventStore
from whirr.studies.linking import submit_option_names
from whirr.studies.results import StoreResults, outcome_of
from whirr.sweeps.progress import SweepRecord, progress
from whirr.sweeps.service import Row, Sweeps
from whirr.sweeps.spec import SweepSpec, parse_spec
from whirr.wire import studies as wire


def submit_options(*layers: dict[str, Any], max_attempts: int) -> dict[str, Any]:
    """A study's submit options (later layers win), typed and checked like ``POST /jobs``'s
    (an unknown key or a bad value is ``InvalidRequest``); ``max_attempts`` unless given."""
    try:
        typed = msgspec.convert(
            {k: v for layer in layers for k, v in layer.items()}, wire.SubmitOptions
        )
    except msgspec.ValidationError as exc:
        raise InvalidRequest(f"invalid submit options: {exc}") from None
    options = {k: v for k, v in msgspec.structs.asdict(typed).items() if v is not None}
    options.setdefault("max_attempts", max_attempts)
    return options


def parse_sweep(req: wire.SweepCreateRequest) -> SweepSpec:
    """The sweep file of a request (its YAML text, or its keys: JSON is YAML)."""
    text = req.spec if isinstance(req.spec, str) else msgspec.json.encode(req.spec).decode()
    return parse_spec(text, source=req.source or "<sweep>", submit_options=submit_option_names())


class StoreStudies:
    """The studies of one store (see ``whirr.facade.studies.Studies``)."""

    def __init__(
        self, store: EventStore, runs_dir: Path, *, max_attempts: int, check_commands: bool
    ) -> None:
        """``runs_dir``: where the runs' files are; ``max_attempts``: the jobs' default;
        ``check_commands``: check here that a command can start (not on a server: it runs
        on a worker's machine)."""
        self.store = store
        self.runs_dir = runs_dir
        self.max_attempts = max_attempts
        self.check_commands = check_commands
        self._sweeps = Sweeps(store)
        self._ablations = Ablations(store, runs_dir.parent.absolute() / "ablations")

    def _results(self) -> StoreResults:
        return StoreResults(self.store, self.runs_dir)

    # -- sweeps -------------------------------------------------------------------------
    def create_sweep(self, req: wire.SweepCreateRequest) -> wire.SweepQueuedResponse:
        spec = parse_sweep(req)
        name = req.name or spec.name
        if name is None:
            raise InvalidRequest("give the sweep a name (`name` in the body or in the file)")
        options = submit_options(spec.submit, req.options, max_attempts=self.max_attempts)
        record, jobs = self._sweeps.create(
            spec,
            name,
            req.workdir,
            seed=req.seed,
            source=req.source,
            options=options,
            check=self.check_commands,
            fail_fast=req.fail_fast,
        )
        return self._queued(record, jobs)

    def sweeps(self) -> list[wire.SweepOut]:
        return [self._sweep_out(r) for r in self._sweeps.all()]

    def sweep(self, name: str) -> wire.SweepOut:
        return self._sweep_out(self._sweeps.get(name))

    def sweep_report(
        self, name: str, metric: str | None = None, goal: str | None = None
    ) -> wire.SweepReportOut:
        report = self._sweeps.report(name, self._results(), metric, goal)
        sweep = self._sweep_out(report.record)
        return wire.SweepReportOut(
            name=sweep.name,
            sweep=sweep,
            created_at=sweep.created_at,
            state=report.progress.state,
            progress=wire.SweepProgressOut(**msgspec.structs.asdict(report.progress)),
            metric=report.metric,
            goal=report.goal,
            jobs=[_value_out(r) for r in report.rows],
            best=_value_out(report.best) if report.best else None,
        )

    def resume_sweep(self, name: str) -> wire.SweepQueuedResponse:
        released = self._sweeps.release(name)
        record, jobs = self._sweeps.resume(name)
        queued = self._queued(record, jobs)
        if not released:
            return queued
        message = f"Sweep {name}: released {len(released)} held job(s); " + (
            f"queued {len(jobs)} more" if jobs else "every job was already queued"
        )
        return msgspec.structs.replace(queued, released=released, message=message)

    def cancel_sweep(self, name: str) -> wire.SweepCancelResponse:
        ids = self._sweeps.cancel(name)
        return wire.SweepCancelResponse(
            message=f"Sweep {name}: cancelled {len(ids)} job(s)", cancelled=ids, count=len(ids)
        )

    def _queued(self, record: SweepRecord, jobs: Sequence[JobView]) -> wire.SweepQueuedResponse:
        ids = [j.id for j in jobs]
        span = f"#{ids[0]}-#{ids[-1]}" if len(ids) > 1 else "".join(f"#{i}" for i in ids)
        return wire.SweepQueuedResponse(
            sweep=self._sweep_out(record),
            jobs=[job_out(j) for j in jobs],
            message=f"Sweep {record.name}: queued {len(ids)} job(s) {span}".rstrip(),
        )

    def _sweep_out(self, record: SweepRecord) -> wire.SweepOut:
        """The wire shape of a sweep, with its jobs' current statuses."""
        jobs = []
        for member in record.members:
            outcome = outcome_of(self.store.job(member.job_id))
            jobs.append(
                wire.SweepJobOut(
                    index=member.index,
                    job_id=member.job_id,
                    config=member.config,
                    status=outcome.status if outcome else None,
                    run_id=outcome.run_id if outcome else None,
                    started=outcome.started if outcome else False,
                )
            )
        counted = progress(record, {j.job_id: j.status for j in jobs if j.status is not None})
        created = record.created
        return wire.SweepOut(
            name=created.sweep,
            program=created.program,
            method=created.method,
            parameters=created.parameters,
            planned=created.planned,
            workdir=created.workdir,
            created_at=record.created_at,
            state=counted.state,
            progress=wire.SweepProgressOut(**msgspec.structs.asdict(counted)),
            jobs=jobs,
            seed=created.seed,
            max_runs=created.max_runs,
            metric=created.metric,
            goal=created.goal,
            source=created.source,
            submit_options=created.submit_options,
            tags=created.tags,
            fail_fast=created.fail_fast,
            fail_fast_state=record.fail_fast,
            paused=record.paused.reason if record.paused is not None else None,
            paused_after=record.paused.failed if record.paused is not None else [],
        )

    # -- ablation studies ---------------------------------------------------------------
    def create_ablation(self, req: wire.AblationCreateRequest) -> wire.AblationOut:
        study = self._ablations.create(
            req.name, req.metric, replicates=req.replicates, seed_base=req.seed_base
        )
        return self._ablation_out(study)

    def ablations(self) -> list[wire.AblationOut]:
        return [self._ablation_out(s) for s in self._ablations.all()]

    def ablation(self, name: str) -> wire.AblationOut:
        return self._ablation_out(self._ablations.get(name))

    def set_ablation_baseline(self, name: str, req: wire.AblationValuesRequest) -> wire.AblationOut:
        return self._ablation_out(self._ablations.set_baseline(name, req.values, req.files))

    def add_ablation_delta(
        self, name: str, req: wire.AblationValuesRequest
    ) -> wire.AblationDeltaResponse:
        study, replaced = self._ablations.add_delta(
            name, req.values, delta=req.delta, files=req.files
        )
        return wire.AblationDeltaResponse(ablation=self._ablation_out(study), replaced=replaced)

    def plan_ablation(self, name: str, req: wire.AblationPlanRequest) -> list[wire.AblationCellOut]:
        _, cells = self._ablations.plan(name, req.command, req.replicates)
        return [
            wire.AblationCellOut(
                condition=c.condition,
                replicate=c.replicate,
                seed=c.seed,
                cfg_path=c.cfg_path,
                argv=c.argv,
                config=c.config,
            )
            for c in cells
        ]

    def run_ablation(self, name: str, req: wire.AblationRunRequest) -> wire.AblationRunResponse:
        options = submit_options(req.options, max_attempts=self.max_attempts)
        jobs = self._ablations.run(
            name,
            req.command,
            req.workdir,
            replicates=req.replicates,
            options=options,
            force=req.force,
            check=self.check_commands,
        )
        ids = [j.id for j in jobs]
        span = f" #{ids[0]}-#{ids[-1]}" if len(ids) > 1 else "".join(f" #{i}" for i in ids)
        return wire.AblationRunResponse(
            jobs=[job_out(j) for j in jobs], message=f"Study {name}: queued {len(ids)} job(s){span}"
        )

    def ablation_ranking(self, name: str) -> wire.AblationRankingOut:
        return _ranking_out(self._ablations.rank(name, self._results()))

    def _ablation_out(self, study: Ablation) -> wire.AblationOut:
        """The wire shape of a study, with its jobs' current statuses."""
        members = []
        for m in study.members:
            outcome = outcome_of(self.store.job(m.job_id))
            members.append(
                wire.AblationMemberOut(
                    job_id=m.job_id,
                    condition=m.condition,
                    replicate=m.replicate,
                    seed=m.seed,
                    cfg_path=m.cfg_path,
                    status=outcome.status if outcome else None,
                    run_id=outcome.run_id if outcome else None,
                    started=outcome.started if outcome else False,
                )
            )
        return wire.AblationOut(
            name=study.name,
            metric=study.metric,
            seed_base=study.seed_base,
            replicates=study.replicates,
            created_at=study.created_at,
            baseline=study.baseline,
            baseline_files=study.baseline_files,
            deltas=[
                wire.AblationDeltaOut(name=d.name, values=d.values, files=d.files)
                for d in study.deltas
            ],
            launches=[
                wire.AblationLaunchOut(
                    command=launch.command, replicates=launch.replicates, workdir=launch.workdir
                )
                for launch in study.launches
            ],
            members=members,
        )


def _value_out(row: Row) -> wire.SweepValueOut:
    return wire.SweepValueOut(
        index=row.member.index,
        job_id=row.member.job_id,
        status=row.job.status if row.job else None,
        run_id=row.job.run_id if row.job else None,
        config=row.member.config,
        value=row.value,
    )


def _ranking_out(ranking: Ranking) -> wire.AblationRankingOut:
    study = ranking.study
    return wire.AblationRankingOut(
        name=study.name,
        metric=study.metric,
        seed_base=study.seed_base,
        baseline=wire.BaselineValuesOut(
            n=len(ranking.baseline_values), values=ranking.baseline_values
        ),
        effects=[
            wire.EffectOut(
                delta=e.delta,
                n=e.n,
                effect=e.effect,
                ci_low=e.ci_low,
                ci_high=e.ci_high,
                agree=e.agree,
                mean_baseline=e.mean_baseline,
                mean_delta=e.mean_delta,
                pairs=[
                    wire.PairOut(replicate=p.replicate, baseline=p.baseline, delta=p.delta)
                    for p in e.pairs
                ],
                excludes_zero=e.excludes_zero,
            )
            for e in ranking.effects
        ],
        pending=ranking.pending,
        failed=ranking.failed,
        no_metric=ranking.no_metric,
        unpaired=ranking.unpaired,
    )
