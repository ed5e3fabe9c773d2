"""Ablation studies on a whirr server: the operations of
``whirr.ablations.service.Ablations`` through the HTTP API (``/ablations``), answering with
the same study records, so the CLI renders both alike.

The server keeps the study and writes its config files (under its data dir, which the
workers share); the ranking is computed here from the jobs' runs, read through the API
(``GET /runs/{id}``, ``/runs/{id}/metrics``)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from whirr.ablations.plan import Cell
from whirr.ablations.service import Ranking, rank_study
from whirr.ablations.state import Ablation, Delta, Member
from whirr.events import AblationLaunched
from whirr.studies.remote import ApiResults
from whirr.studies.results import JobOutcome

if TYPE_CHECKING:
    from whirr.client import WhirrClient
    from whirr.wire.schemas import Job
    from whirr.wire.studies import AblationOut


def study_of(out: AblationOut) -> Ablation:
    """The study an API answer describes."""
    return Ablation(
        name=out.name,
        metric=out.metric,
        seed_base=out.seed_base,
        replicates=out.replicates,
        created_at=out.created_at,
        baseline=out.baseline,
        baseline_files=out.baseline_files,
        deltas=[Delta(d.name, d.values, d.files) for d in out.deltas],
        launches=[
            AblationLaunched(
                ablation=out.name,
                command=launch.command,
                replicates=launch.replicates,
                workdir=launch.workdir,
            )
            for launch in out.launches
        ],
        members=[
            Member(m.job_id, m.condition, m.replicate, m.seed, m.cfg_path) for m in out.members
        ],
    )


class RemoteAblations:
    """The ablation operations against one server."""

    def __init__(self, client: WhirrClient) -> None:
        self.client = client

    def get(self, name: str) -> Ablation:
        """One study, or ``NotFound``."""
        return study_of(self.client.get_ablation(name))

    def all(self) -> list[Ablation]:
        """Every study, oldest first."""
        return [study_of(out) for out in self.client.ablations()]

    def create(
        self, name: str, metric: str, *, replicates: int = 20, seed_base: int | None = None
    ) -> Ablation:
        """Start study ``name`` ranking deltas by ``metric``."""
        return study_of(
            self.client.create_ablation(name, metric, replicates=replicates, seed_base=seed_base)
        )

    def set_baseline(
        self, name: str, values: dict[str, Any], files: dict[str, str] | None = None
    ) -> Ablation:
        """Merge ``values`` into the baseline."""
        return study_of(self.client.set_ablation_baseline(name, values, files))

    def add_delta(
        self,
        name: str,
        values: dict[str, Any],
        *,
        delta: str | None = None,
        files: dict[str, str] | None = None,
    ) -> tuple[Ablation, bool]:
        """Add (or replace) a delta; returns the study and whether one was replaced."""
        added = self.client.add_ablation_delta(name, values, delta=delta, files=files)
        return study_of(added.ablation), added.replaced

    def plan(
        self, name: str, command: Sequence[str], replicates: int | None = None
    ) -> tuple[Ablation, list[Cell]]:
        """The study and the cells ``run`` would queue now (config paths on the server's
        data dir)."""
        cells = self.client.plan_ablation(name, command, replicates=replicates)
        return self.get(name), [
            Cell(c.condition, c.replicate, c.seed, c.cfg_path, c.argv, c.config) for c in cells
        ]

    def run(
        self,
        name: str,
        command: Sequence[str],
        workdir: str,
        *,
        replicates: int | None = None,
        options: dict[str, Any] | None = None,
        force: bool = False,
    ) -> list[Job]:
        """Queue every missing cell on the server; returns the jobs queued."""
        return self.client.run_ablation(
            name, command, workdir, replicates=replicates, options=options, force=force
        ).jobs

    def rank(self, name: str, *, level: float = 0.95) -> Ranking:
        """Each delta's paired effect against the baseline, strongest first."""
        out = self.client.get_ablation(name)
        outcomes = {
            m.job_id: JobOutcome(m.status, m.run_id or "", m.started)
            for m in out.members
            if m.status is not None
        }
        return rank_study(study_of(out), ApiResults(self.client, outcomes), level=level)
