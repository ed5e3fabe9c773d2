"""Events of a sweep: created (with its plan's inputs), and each job it queued."""

from typing import Any, Literal

from whirr.events.base import Event
from whirr.events.bounds import Index, JobId, Seed, SweepPoints

#: Which way a sweep's metric is better.
Goal = Literal["minimize", "maximize"]


class SweepCreated(Event, frozen=True, tag="sweep.created"):
    """A sweep was planned: enough to expand it again exactly (``seed`` included).

    ``sweep`` is its name, unique in the project; its jobs are named ``<sweep>-<i>``."""

    sweep: str
    program: str
    method: Literal["grid", "random"]
    parameters: dict[str, Any]
    planned: SweepPoints
    workdir: str
    seed: Seed | None = None
    max_runs: SweepPoints | None = None
    metric: str | None = None
    goal: Goal = "minimize"
    source: str = ""
    submit_options: dict[str, Any] = {}
    #: Tags every job gets besides ``sweep:<sweep>``.
    tags: list[str] = []


class SweepJobAdded(Event, frozen=True, tag="sweep.job_added"):
    """Job ``job_id`` was queued as point ``index`` of the sweep (same transaction)."""

    sweep: str
    index: Index
    job_id: JobId
    config: dict[str, Any] = {}


def sweep_stream(name: str) -> str:
    """The stream name of a sweep's events."""
    return f"sweep-{name}"
