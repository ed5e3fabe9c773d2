"""Events of a sweep: created (with its plan's inputs), each job it queued, and the
fail-fast rule's outcome (paused with its held jobs, or cleared) and resume."""

from typing import Any, Literal

from whirr.events.base import Event
from whirr.events.bounds import ExitCode, Index, JobId, Seed, SweepPoints

#: Which way a sweep's metric is better.
Goal = Literal["minimize", "maximize"]


class SweepCreated(Event, frozen=True, tag="sweep.created"):
    """A sweep was planned: enough to expand it again exactly (``seed`` included).

    ``sweep`` is its name, unique in the project; its jobs are named ``<sweep>-<i>``."""

    sweep: str
    program: str
    #: ``bayes``: only the first ``max_concurrent`` points are planned up front; each later
    #: point is proposed as a job ends (``whirr.sweeps.bayes``), recorded as its
    #: ``sweep.job_added`` (config = the point), and ``planned`` is ``max_runs``.
    method: Literal["grid", "random", "bayes"]
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
    #: Fail fast: when the first ``fail_fast`` jobs to end all failed with the same exit
    #: code and logged no metric, the sweep pauses (``sweep.paused``); 0 turns it off.
    fail_fast: SweepPoints = 3
    #: W&B's ``early_terminate`` (``{type: median|hyperband, min_iter, ...}``): a running
    #: job whose ``metric`` lags is cancelled with reason ``pruned``; None: never.
    early_terminate: dict[str, Any] | None = None
    #: bayes: how many of its jobs are queued or running at once.
    max_concurrent: SweepPoints | None = None


class SweepJobAdded(Event, frozen=True, tag="sweep.job_added"):
    """Job ``job_id`` was queued as point ``index`` of the sweep (same transaction)."""

    sweep: str
    index: Index
    job_id: JobId
    config: dict[str, Any] = {}


class SweepPaused(Event, frozen=True, tag="sweep.paused"):
    """The sweep's remaining queued jobs were held (``job.held``, same transaction).

    ``failed``: the jobs whose ends paused it (the first ``fail_fast`` to end, all failed
    with ``exit_code`` and no metric logged); ``held``: the jobs held."""

    sweep: str
    reason: str
    failed: list[JobId] = []
    exit_code: ExitCode | None = None
    held: list[JobId] = []


class SweepFailFastCleared(Event, frozen=True, tag="sweep.fail_fast_cleared"):
    """The first ``fail_fast`` jobs of the sweep to end (``ended``) were not identical
    failures: the rule is settled and will not pause the sweep."""

    sweep: str
    ended: list[JobId] = []


class SweepResumed(Event, frozen=True, tag="sweep.resumed"):
    """A paused sweep goes on: its held jobs were released (``job.released``)."""

    sweep: str
    released: list[JobId] = []


def sweep_stream(name: str) -> str:
    """The stream name of a sweep's events."""
    return f"sweep-{name}"
