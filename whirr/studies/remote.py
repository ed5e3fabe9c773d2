"""``Results`` of a study whose jobs live on a whirr server, read through its HTTP API."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

from whirr.services.errors import NotFound
from whirr.studies.results import JobOutcome, pick_value

if TYPE_CHECKING:
    from whirr.client import WhirrClient


class ApiResults:
    """Jobs' outcomes as the server reported them with the study; a run's value from its
    summary (``GET /runs/{id}``), else from its logged metrics (``/runs/{id}/metrics``,
    fetched only then)."""

    def __init__(self, client: WhirrClient, outcomes: Mapping[int, JobOutcome]) -> None:
        self.client = client
        self.outcomes = outcomes

    def outcome(self, job_id: int) -> JobOutcome | None:
        """The job's outcome (None if the server knows no such job)."""
        return self.outcomes.get(job_id)

    def metric(self, run_id: str, metric: str) -> float | None:
        """The run's value on ``metric``, or None (no such run, or no value)."""
        try:
            run = self.client.get_run(run_id)
        except NotFound:  # a job whose run was never recorded (it could not start)
            return None
        return pick_value(run.summary, lambda: self.client.metrics(run.id), metric)
