"""``Studies``: sweeps and ablation studies, asked of one whirr installation.

``Whirr.studies`` is one: ``StoreStudies`` (``local_studies.py``) decides over an event
store and reads its run files, for a project and for ``whirr server`` alike (the server's
``/sweeps`` and ``/ablations`` routes call the same methods); ``HttpStudies``
(``http_studies.py``) carries each call to a server. Requests and answers are the wire
types of ``whirr.wire.studies``, so ``whirr sweep ... --json`` prints one shape either way,
and a report or ranking is computed where the runs' files are, from every row of them.

Errors are ``whirr.services.errors``: ``NotFound`` (no such sweep or study),
``InvalidRequest`` (a bad file, option or name), ``InvalidState`` (a name in use, a
study without deltas, a changed command).
"""

from __future__ import annotations

from typing import Protocol

from whirr.wire import studies as wire


class Studies(Protocol):
    """Sweeps and ablation studies of one installation, local or remote."""

    # -- sweeps -------------------------------------------------------------------------
    def create_sweep(self, req: wire.SweepCreateRequest) -> wire.SweepQueuedResponse:
        """Record the sweep of ``req.spec`` (a sweep file's text) and queue its jobs."""
        ...

    def sweeps(self) -> list[wire.SweepOut]:
        """Every sweep with its progress, oldest first."""
        ...

    def sweep(self, name: str) -> wire.SweepOut:
        """One sweep with its jobs' statuses and runs."""
        ...

    def sweep_report(
        self, name: str, metric: str | None = None, goal: str | None = None
    ) -> wire.SweepReportOut:
        """Each job's value on ``metric`` (default: the file's) and the best run."""
        ...

    def resume_sweep(self, name: str) -> wire.SweepQueuedResponse:
        """Queue the jobs of an interrupted sweep that were never queued."""
        ...

    def cancel_sweep(self, name: str) -> wire.SweepCancelResponse:
        """Cancel the sweep's queued and running jobs."""
        ...

    # -- ablation studies ---------------------------------------------------------------
    def create_ablation(self, req: wire.AblationCreateRequest) -> wire.AblationOut:
        """Start a study compared on ``req.metric``."""
        ...

    def ablations(self) -> list[wire.AblationOut]:
        """Every study, oldest first."""
        ...

    def ablation(self, name: str) -> wire.AblationOut:
        """One study with its jobs' statuses and runs."""
        ...

    def set_ablation_baseline(self, name: str, req: wire.AblationValuesRequest) -> wire.AblationOut:
        """Merge ``req.values`` into the study's baseline."""
        ...

    def add_ablation_delta(
        self, name: str, req: wire.AblationValuesRequest
    ) -> wire.AblationDeltaResponse:
        """Add (or replace) a delta; its name defaults to its first key."""
        ...

    def plan_ablation(self, name: str, req: wire.AblationPlanRequest) -> list[wire.AblationCellOut]:
        """The cells ``run_ablation`` would queue now (nothing is written)."""
        ...

    def run_ablation(self, name: str, req: wire.AblationRunRequest) -> wire.AblationRunResponse:
        """Queue every cell not yet queued (or whose job failed), with paired seeds."""
        ...

    def ablation_ranking(self, name: str) -> wire.AblationRankingOut:
        """The deltas ranked by paired effect on the study's metric, strongest first."""
        ...
