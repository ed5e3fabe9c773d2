"""The study routes of ``WhirrClient`` (``/sweeps``, ``/ablations``), kept beside the
client so that its module stays about jobs, workers and runs.

    with WhirrClient("http://head-node:8080") as client:
        queued = client.create_sweep(open("sweep.yaml").read(), "/home/me/project",
                                     name="lr", options={"priority": 5})
        print(client.get_sweep("lr").progress)
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, TypeVar

from whirr.wire import studies as schemas

T = TypeVar("T")


class StudyCalls:
    """Sweeps and ablation studies on a server (mixed into ``WhirrClient``)."""

    if TYPE_CHECKING:

        def _call(self, method: str, path: str, kind: type[T], **kwargs: Any) -> T: ...

    # -- sweeps -------------------------------------------------------------------------
    def create_sweep(
        self,
        spec: str | dict[str, Any],
        workdir: str,
        *,
        name: str | None = None,
        seed: int | None = None,
        source: str = "",
        options: dict[str, Any] | None = None,
        fail_fast: int | None = None,
    ) -> schemas.SweepQueuedResponse:
        """Record a sweep (``spec``: the file's YAML text, or its keys) and queue its jobs
        to run in ``workdir`` on the workers; ``options``: submit options for every job;
        ``fail_fast``: N identical first failures pause it (0: off; None: the file's)."""
        req = schemas.SweepCreateRequest(
            spec=spec,
            workdir=workdir,
            name=name,
            seed=seed,
            source=source,
            options=options or {},
            fail_fast=fail_fast,
        )
        return self._call("POST", "/sweeps", schemas.SweepQueuedResponse, body=req)

    def sweeps(self) -> list[schemas.SweepOut]:
        """Every sweep with its progress, oldest first."""
        return self._call("GET", "/sweeps", schemas.SweepsResponse).sweeps

    def get_sweep(self, name: str) -> schemas.SweepOut:
        """One sweep with its jobs' statuses and runs."""
        return self._call("GET", f"/sweeps/{name}", schemas.SweepOut)

    def sweep_report(
        self, name: str, metric: str | None = None, goal: str | None = None
    ) -> schemas.SweepReportOut:
        """Each job's value on ``metric`` (default: the file's), worked out by the server
        from its runs, and the best run (``goal``: ``minimize`` or ``maximize``)."""
        params = {"metric": metric, "goal": goal}
        return self._call("GET", f"/sweeps/{name}/report", schemas.SweepReportOut, params=params)

    def resume_sweep(self, name: str) -> schemas.SweepQueuedResponse:
        """Queue the jobs of an interrupted sweep that were never queued."""
        return self._call("POST", f"/sweeps/{name}/resume", schemas.SweepQueuedResponse)

    def cancel_sweep(self, name: str) -> schemas.SweepCancelResponse:
        """Cancel a sweep's queued and running jobs."""
        return self._call("POST", f"/sweeps/{name}/cancel", schemas.SweepCancelResponse)

    # -- ablation studies ---------------------------------------------------------------
    def create_ablation(
        self, name: str, metric: str, *, replicates: int = 20, seed_base: int | None = None
    ) -> schemas.AblationOut:
        """Start an ablation study compared on ``metric``."""
        req = schemas.AblationCreateRequest(
            name=name, metric=metric, replicates=replicates, seed_base=seed_base
        )
        return self._call("POST", "/ablations", schemas.AblationOut, body=req)

    def ablations(self) -> list[schemas.AblationOut]:
        """Every ablation study, oldest first."""
        return self._call("GET", "/ablations", schemas.AblationsResponse).ablations

    def get_ablation(self, name: str) -> schemas.AblationOut:
        """One study with its jobs' statuses and runs."""
        return self._call("GET", f"/ablations/{name}", schemas.AblationOut)

    def ablation_ranking(self, name: str) -> schemas.AblationRankingOut:
        """The study's deltas ranked by paired effect, worked out by the server."""
        return self._call("GET", f"/ablations/{name}/ranking", schemas.AblationRankingOut)

    def set_ablation_baseline(
        self, name: str, values: dict[str, Any], files: dict[str, str] | None = None
    ) -> schemas.AblationOut:
        """Merge ``values`` into the study's baseline."""
        req = schemas.AblationValuesRequest(values=values, files=files or {})
        return self._call("POST", f"/ablations/{name}/baseline", schemas.AblationOut, body=req)

    def add_ablation_delta(
        self,
        name: str,
        values: dict[str, Any],
        *,
        delta: str | None = None,
        files: dict[str, str] | None = None,
    ) -> schemas.AblationDeltaResponse:
        """Add (or replace) a delta of the study."""
        req = schemas.AblationValuesRequest(values=values, files=files or {}, delta=delta)
        return self._call(
            "POST", f"/ablations/{name}/deltas", schemas.AblationDeltaResponse, body=req
        )

    def plan_ablation(
        self, name: str, command: Sequence[str], *, replicates: int | None = None
    ) -> list[schemas.AblationCellOut]:
        """The cells ``run_ablation`` would queue now."""
        req = schemas.AblationPlanRequest(command=list(command), replicates=replicates)
        return self._call(
            "POST", f"/ablations/{name}/plan", schemas.AblationPlanResponse, body=req
        ).cells

    def run_ablation(
        self,
        name: str,
        command: Sequence[str],
        workdir: str,
        *,
        replicates: int | None = None,
        options: dict[str, Any] | None = None,
        force: bool = False,
    ) -> schemas.AblationRunResponse:
        """Queue every cell of the study not yet queued (or whose job failed)."""
        req = schemas.AblationRunRequest(
            command=list(command),
            workdir=workdir,
            replicates=replicates,
            options=options or {},
            force=force,
        )
        return self._call("POST", f"/ablations/{name}/run", schemas.AblationRunResponse, body=req)
