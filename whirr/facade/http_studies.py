"""``HttpStudies``: sweeps and ablation studies of a whirr server, through ``WhirrClient``.

The server answers each call with the ``StoreStudies`` method a local project would run
(reports and rankings included, worked out beside the runs' files), so this class only
carries calls across the wire.
"""

from __future__ import annotations

from whirr.client import WhirrClient
from whirr.wire import studies as wire


class HttpStudies:
    """The studies of one server (see ``whirr.facade.studies.Studies``)."""

    def __init__(self, client: WhirrClient) -> None:
        self.client = client

    # -- sweeps -------------------------------------------------------------------------
    def create_sweep(self, req: wire.SweepCreateRequest) -> wire.SweepQueuedResponse:
        return self.client.create_sweep(
            req.spec,
            req.workdir,
            name=req.name,
            seed=req.seed,
            source=req.source,
            options=req.options,
            fail_fast=req.fail_fast,
        )

    def sweeps(self) -> list[wire.SweepOut]:
        return self.client.sweeps()

    def sweep(self, name: str) -> wire.SweepOut:
        return self.client.get_sweep(name)

    def sweep_report(
        self, name: str, metric: str | None = None, goal: str | None = None
    ) -> wire.SweepReportOut:
        return self.client.sweep_report(name, metric, goal)

    def resume_sweep(self, name: str) -> wire.SweepQueuedResponse:
        return self.client.resume_sweep(name)

    def cancel_sweep(self, name: str) -> wire.SweepCancelResponse:
        return self.client.cancel_sweep(name)

    # -- ablation studies ---------------------------------------------------------------
    def create_ablation(self, req: wire.AblationCreateRequest) -> wire.AblationOut:
        return self.client.create_ablation(
            req.name, req.metric, replicates=req.replicates, seed_base=req.seed_base
        )

    def ablations(self) -> list[wire.AblationOut]:
        return self.client.ablations()

    def ablation(self, name: str) -> wire.AblationOut:
        return self.client.get_ablation(name)

    def set_ablation_baseline(self, name: str, req: wire.AblationValuesRequest) -> wire.AblationOut:
        return self.client.set_ablation_baseline(name, req.values, req.files)

    def add_ablation_delta(
        self, name: str, req: wire.AblationValuesRequest
    ) -> wire.AblationDeltaResponse:
        return self.client.add_ablation_delta(name, req.values, delta=req.delta, files=req.files)

    def plan_ablation(self, name: str, req: wire.AblationPlanRequest) -> list[wire.AblationCellOut]:
        return self.client.plan_ablation(name, req.command, replicates=req.replicates)

    def run_ablation(self, name: str, req: wire.AblationRunRequest) -> wire.AblationRunResponse:
        return self.client.run_ablation(
            name,
            req.command,
            req.workdir,
            replicates=req.replicates,
            options=req.options,
            force=req.force,
        )

    def ablation_ranking(self, name: str) -> wire.AblationRankingOut:
        return self.client.ablation_ranking(name)
