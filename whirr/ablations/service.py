"""Ablation decisions: create a study, set its baseline, add deltas, run it, rank deltas.

The study lives in its own stream (``ablation-<name>``): a crash at any point loses
nothing already recorded, and each job joins the study in the transaction that queues
it, so ``run`` again queues exactly the cells still missing.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import msgspec

from whirr.ablations import plan as planning
from whirr.ablations.state import Ablation, Member, fold
from whirr.ablations.stats import Effect, Pair, paired_effect, rank
from whirr.events import (
    AblationBaselineSet,
    AblationCreated,
    AblationDeltaAdded,
    AblationJobAdded,
    AblationLaunched,
    JobSubmitted,
    Pending,
)
from whirr.events.ablations import ablation_stream
from whirr.projections import JobView
from whirr.services.errors import InvalidRequest, InvalidState, NotFound
from whirr.services.jobs import check_runnable
from whirr.store import EventStore
from whirr.studies.linking import check_submit_options, submit_linked
from whirr.studies.results import Results
from whirr.studies.streams import create_stream
from whirr.sweeps.spec import NAME_PATTERN

#: Job statuses after which a cell needs a new job when the study runs again.
RETRYABLE = ("failed", "cancelled", "timed_out")


class Ranking(msgspec.Struct, frozen=True, kw_only=True):
    """The deltas ranked by effect, with what is still missing."""

    study: Ablation
    baseline_values: dict[int, float]
    effects: list[Effect]
    pending: int = 0
    failed: int = 0
    no_metric: int = 0
    unpaired: dict[str, int] = {}


def _check_name(kind: str, name: str) -> None:
    if not NAME_PATTERN.fullmatch(name):
        raise InvalidRequest(
            f"{name!r} is not a usable {kind} name (letters, digits, "
            "'.', '_', '-'; starting with a letter or digit)"
        )


class Ablations:
    """The ablation decisions over one store; config files go under ``home``
    (``.whirr/ablations``)."""

    def __init__(self, store: EventStore, home: Path) -> None:
        self.store = store
        self.home = home

    def get(self, name: str) -> Ablation:
        """One study, or ``NotFound``."""
        study = fold(self.store.read(stream=ablation_stream(name)))
        if study is None:
            raise NotFound(
                f"no ablation study named {name!r} (create it with "
                f"`whirr ablate init {name} -m METRIC`)"
            )
        return study

    def all(self) -> list[Ablation]:
        """Every study, oldest first."""
        created = self.store.read(types=["ablation.created"])
        return [self.get(r.event.ablation) for r in created]  # type: ignore[attr-defined]

    def create(
        self, name: str, metric: str, *, replicates: int = 20, seed_base: int | None = None
    ) -> Ablation:
        """Start study ``name`` ranking deltas by ``metric``."""
        _check_name("study", name)
        if not metric:
            raise InvalidRequest("give the metric to compare, e.g. -m accuracy")
        if replicates < 1:
            raise InvalidRequest("replicates must be at least 1")
        base = seed_base if seed_base is not None else secrets.randbelow(1_000_000)
        event = AblationCreated(ablation=name, metric=metric, seed_base=base, replicates=replicates)
        create_stream(
            self.store,
            ablation_stream(name),
            event,
            taken=f"an ablation study named {name!r} already exists",
        )
        return self.get(name)

    def set_baseline(
        self, name: str, values: dict[str, Any], files: dict[str, str] | None = None
    ) -> Ablation:
        """Merge ``values`` into the baseline every condition starts from."""
        self.get(name)
        if not values:
            raise InvalidRequest("give at least one key=value")
        event = AblationBaselineSet(ablation=name, values=values, files=files or {})
        self.store.append([Pending(ablation_stream(name), event)])
        return self.get(name)

    def add_delta(
        self,
        name: str,
        values: dict[str, Any],
        *,
        delta: str | None = None,
        files: dict[str, str] | None = None,
    ) -> tuple[Ablation, bool]:
        """Add (or replace) a delta; its name defaults to its first key. Returns the study
        and whether an existing delta was replaced."""
        study = self.get(name)
        if not values:
            raise InvalidRequest("give at least one key=value")
        delta = delta or next(iter(values))
        _check_name("delta", delta)
        if delta == planning.BASELINE:
            raise InvalidRequest(
                "`baseline` names the baseline itself; set it with "
                f"`whirr ablate baseline {name} key=value`"
            )
        replaced = any(d.name == delta for d in study.deltas)
        event = AblationDeltaAdded(ablation=name, delta=delta, values=values, files=files or {})
        self.store.append([Pending(ablation_stream(name), event)])
        return self.get(name), replaced

    def plan(
        self, name: str, command: Sequence[str], replicates: int | None = None
    ) -> tuple[Ablation, list[planning.Cell]]:
        """The cells ``run`` would queue now: those never queued, or whose job failed,
        was cancelled or timed out."""
        study = self.get(name)
        if not study.deltas:
            raise InvalidState(
                f"study {name} has no deltas yet; add one with `whirr ablate add {name} key=value`"
            )
        if not command:
            raise InvalidRequest(
                "give the command after --, e.g. `whirr ablate run "
                f"{name} -- python eval.py --seed {{{{seed}}}}`"
            )
        skip = set()
        for key, member in study.latest().items():
            job = self.store.job(member.job_id)
            if job is not None and job.status not in RETRYABLE:
                skip.add(key)
        cells = planning.cells(
            ablation=name,
            conditions=study.conditions,
            seed_base=study.seed_base,
            replicates=replicates or study.replicates,
            template=list(command),
            cfg_path=lambda c, r: self.home / name / "configs" / f"{c}-{r}.json",
            skip=frozenset(skip),
        )
        return study, cells

    def run(
        self,
        name: str,
        command: Sequence[str],
        workdir: str,
        *,
        replicates: int | None = None,
        options: dict[str, Any] | None = None,
        force: bool = False,
        check: bool = True,
    ) -> list[JobView]:
        """Queue every missing cell: write its config file, then submit its job, which
        joins the study in the same transaction. ``check``: verify here that the command
        can start (not on a server: the workdir lives on the workers' machines)."""
        study, cells = self.plan(name, command, replicates)
        options = check_submit_options(dict(options or {}))
        previous = study.launches[-1].command if study.launches else None
        if previous is not None and previous != list(command) and study.members and not force:
            raise InvalidState(
                f"study {name} ran before with a different command ({' '.join(previous)}); "
                "mixing commands makes pairs incomparable (pass --force if that is intended)"
            )
        if not cells:
            return []
        if check:
            check_runnable(cells[0].argv, workdir)
        stream = ablation_stream(name)
        launched = AblationLaunched(
            ablation=name,
            command=list(command),
            replicates=replicates or study.replicates,
            workdir=workdir,
        )
        self.store.append([Pending(stream, launched)])
        queued = []
        for cell in cells:
            _write_config(Path(cell.cfg_path), cell.config)

            def link(event: JobSubmitted, cell: planning.Cell = cell) -> list[Pending]:
                added = AblationJobAdded(
                    ablation=name,
                    job_id=event.job_id,
                    condition=cell.condition,
                    replicate=cell.replicate,
                    seed=cell.seed,
                    cfg_path=cell.cfg_path,
                )
                return [Pending(stream, added)]

            queued.append(
                submit_linked(
                    self.store,
                    link,
                    cell.argv,
                    workdir,
                    name=f"{name}-{cell.condition}-{cell.replicate}",
                    config=cell.config,
                    tags=[f"ablate:{name}", f"condition:{cell.condition}"],
                    check=False,
                    **options,
                )
            )
        return queued

    def rank(self, name: str, results: Results, *, level: float = 0.95) -> Ranking:
        """Each delta's paired effect on the metric against the baseline, strongest first
        (the jobs' outcomes and values read from ``results``)."""
        return rank_study(self.get(name), results, level=level)


def rank_study(study: Ablation, results: Results, *, level: float = 0.95) -> Ranking:
    """Rank ``study``'s deltas, reading its jobs' outcomes and values from ``results``."""
    values: dict[str, dict[int, float]] = {c: {} for c in study.conditions}
    pending = failed = no_metric = 0
    for (condition, replicate), member in sorted(study.latest().items()):
        status, value = _outcome(results, member, study.metric)
        if status in ("queued", "running"):
            pending += 1
        elif status in RETRYABLE:
            failed += 1
        elif value is None:
            no_metric += 1
        elif condition in values:
            values[condition][replicate] = value
    baseline = values.pop(planning.BASELINE)
    effects, unpaired = [], {}
    for delta, by_replicate in values.items():
        pairs = [Pair(r, baseline[r], v) for r, v in sorted(by_replicate.items()) if r in baseline]
        unpaired[delta] = len(by_replicate) - len(pairs)
        if pairs:
            effects.append(paired_effect(delta, pairs, level=level))
    return Ranking(
        study=study,
        baseline_values=baseline,
        effects=rank(effects),
        pending=pending,
        failed=failed,
        no_metric=no_metric,
        unpaired=unpaired,
    )


def _outcome(results: Results, member: Member, metric: str) -> tuple[str, float | None]:
    job = results.outcome(member.job_id)
    if job is None:
        return "missing", None
    if job.status != "completed":
        return job.status, None
    return job.status, results.metric(job.run_id, metric)


def _write_config(path: Path, config: dict[str, Any]) -> None:
    """Write a cell's config atomically (a job never reads half a file)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_bytes(msgspec.json.format(msgspec.json.encode(config), indent=2))
    os.replace(tmp, path)
