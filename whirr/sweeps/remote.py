"""Sweeps on a whirr server: the same operations as ``whirr.sweeps.service.Sweeps``, through
the HTTP API (``/sweeps``), answering with the same records, so the CLI renders both alike.

The server records the sweep and queues its jobs; the best run is found here, from the
jobs' runs read through the API (``whirr.studies.remote.ApiResults``)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, cast

import msgspec

from whirr.events import SweepCreated
from whirr.studies.remote import ApiResults
from whirr.studies.results import JobOutcome
from whirr.sweeps.progress import Member, Progress, SweepRecord
from whirr.sweeps.service import SweepReport, report

if TYPE_CHECKING:
    from whirr.client import WhirrClient
    from whirr.wire.schemas import Job
    from whirr.wire.studies import SweepOut


def record_of(out: SweepOut) -> SweepRecord:
    """The sweep record an API answer describes."""
    created = SweepCreated(
        sweep=out.name,
        program=out.program,
        method=cast(Any, out.method),
        parameters=out.parameters,
        planned=out.planned,
        workdir=out.workdir,
        seed=out.seed,
        max_runs=out.max_runs,
        metric=out.metric,
        goal=cast(Any, out.goal),
        source=out.source,
        submit_options=out.submit_options,
        tags=out.tags,
    )
    members = [Member(j.index, j.job_id, j.config) for j in out.jobs]
    # The log position of `sweep.created` stays on the server; nothing here orders by it.
    return SweepRecord(created=created, created_at=out.created_at, position=0, members=members)


def outcomes_of(out: SweepOut) -> dict[int, JobOutcome]:
    """Job id -> outcome, for the sweep's jobs the server knows."""
    return {
        j.job_id: JobOutcome(j.status, j.run_id or "", j.started)
        for j in out.jobs
        if j.status is not None
    }


class RemoteSweeps:
    """The sweep operations against one server."""

    def __init__(self, client: WhirrClient) -> None:
        self.client = client

    def get(self, name: str) -> SweepRecord:
        """One sweep, or ``NotFound``."""
        return record_of(self.client.get_sweep(name))

    def create(
        self,
        text: str,
        name: str,
        workdir: str,
        *,
        seed: int | None = None,
        source: str = "",
        options: dict[str, Any] | None = None,
    ) -> tuple[SweepRecord, list[Job]]:
        """Record sweep ``name`` from a file's ``text`` on the server and queue its jobs."""
        queued = self.client.create_sweep(
            text, workdir, name=name, seed=seed, source=source, options=options
        )
        return record_of(queued.sweep), queued.jobs

    def resume(self, name: str) -> tuple[SweepRecord, list[Job]]:
        """Queue the jobs of an interrupted sweep that were never queued."""
        queued = self.client.resume_sweep(name)
        return record_of(queued.sweep), queued.jobs

    def cancel(self, name: str) -> list[int]:
        """Cancel the sweep's queued and running jobs; returns their ids."""
        return self.client.cancel_sweep(name).cancelled

    def overview(self) -> list[tuple[SweepRecord, Progress]]:
        """Every sweep with its progress, oldest first."""
        return [
            (record_of(out), Progress(**msgspec.structs.asdict(out.progress)))
            for out in self.client.sweeps()
        ]

    def report(self, name: str, metric: str | None = None, goal: str | None = None) -> SweepReport:
        """Progress, every job with its metric value, and the best run on ``metric``."""
        out = self.client.get_sweep(name)
        results = ApiResults(self.client, outcomes_of(out))
        return report(record_of(out), results, metric, goal)
