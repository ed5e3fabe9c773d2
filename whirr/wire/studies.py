"""Bodies of the study routes (``/sweeps``, ``/ablations``) of the HTTP API.

A sweep or an ablation study submitted to a server lives in the server's event log, like
its jobs, so any machine sees it (``whirr sweeps --server URL``). These Structs follow the
rules of ``whirr.wire.schemas`` (which they build on): requests ignore unknown keys and get
new fields with defaults; responses only gain keys. Imports nothing but msgspec.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from msgspec import Meta

from whirr.wire.schemas import Argv, Body, Job, MaxAttempts, Priority, Text

#: Sweep, study and delta names: they become job names, tags and stream names.
Name = Annotated[str, Meta(pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$")]
Workdir = Annotated[str, Meta(min_length=1, max_length=4096)]
Values = Annotated[dict[str, Any], Meta(max_length=1000)]
Files = Annotated[dict[str, str], Meta(max_length=1000)]


class SubmitOptions(Body, forbid_unknown_fields=True):
    """Submit options every job of a study gets (as in ``POST /jobs``); an unknown key is
    a 422, so a misspelt option never goes unnoticed."""

    env: (
        Annotated[
            dict[Annotated[str, Meta(min_length=1, max_length=1000)], Text], Meta(max_length=1000)
        ]
        | None
    ) = None
    priority: Priority | None = None
    max_attempts: MaxAttempts | None = None
    gpus: Annotated[int, Meta(ge=0, le=64)] | None = None
    after: (
        Annotated[list[Annotated[int, Meta(ge=1, le=2**63 - 1)]], Meta(max_length=1000)] | None
    ) = None
    after_any: bool | None = None
    retries: Annotated[int, Meta(ge=0, le=100)] | None = None
    retry_delay: Annotated[float, Meta(ge=0, le=86_400)] | None = None
    timeout_seconds: Annotated[float, Meta(gt=0, le=10_000_000)] | None = None


# -- sweeps -------------------------------------------------------------------------------
class SweepCreateRequest(Body):
    """``POST /sweeps``: record sweep ``name`` and queue its jobs to run in ``workdir``.

    ``spec`` is the sweep file: its YAML text, or the same keys as a JSON object. Its
    errors are a 422 naming the key and line (of ``source``, the file's name)."""

    spec: Annotated[str, Meta(max_length=1_000_000)] | dict[str, Any]
    workdir: Workdir
    name: Name | None = None
    seed: Annotated[int, Meta(ge=0, le=2**63 - 1)] | None = None
    source: Annotated[str, Meta(max_length=4096)] = ""
    #: Submit options for every job; they win over the file's ``submit`` section.
    options: dict[str, Any] = {}
    #: Fail fast after this many identical first failures (0: off); None: the file's.
    fail_fast: Annotated[int, Meta(ge=0, le=100_000)] | None = None


class SweepProgressOut(Body):
    """How far a sweep got: jobs planned, queued so far, and per status."""

    planned: int
    submitted: int
    queued: int = 0
    running: int = 0
    done: int = 0
    failed: int = 0
    cancelled: int = 0
    #: Fail-fast paused the sweep (its queued jobs are held).
    paused: bool = False
    #: A bayes sweep: each job that ends queues the next point (fewer queued than planned).
    proposes: bool = False


class SweepJobOut(Body):
    """One job of a sweep: its point, and (when the job exists) its status and run."""

    index: int
    job_id: int
    config: dict[str, Any]
    status: str | None = None
    run_id: str | None = None
    #: The job's process started at least once (its run may hold values).
    started: bool = False


class SweepOut(Body):
    """A sweep: what it was planned from, its progress, its jobs. ``state`` is
    ``incomplete`` (not every job queued), ``paused`` (fail-fast holds its jobs),
    ``active`` or ``finished``."""

    name: str
    program: str
    method: str
    parameters: dict[str, Any]
    planned: int
    workdir: str
    created_at: datetime
    state: str
    progress: SweepProgressOut
    jobs: list[SweepJobOut]
    seed: int | None = None
    max_runs: int | None = None
    metric: str | None = None
    goal: str = "minimize"
    source: str = ""
    submit_options: dict[str, Any] = {}
    tags: list[str] = []
    #: Fail fast after this many identical first failures (0: off).
    fail_fast: int = 3
    #: The fail-fast rule: watching, cleared, paused, resumed or off.
    fail_fast_state: str = "watching"
    #: Why the sweep is paused (None: it is not).
    paused: str | None = None
    #: The jobs whose ends paused it (its first ``fail_fast`` to end).
    paused_after: list[int] = []


class SweepsResponse(Body):
    """``GET /sweeps``: every sweep, oldest first."""

    sweeps: list[SweepOut]


class SweepQueuedResponse(Body):
    """``POST /sweeps`` and ``POST /sweeps/{name}/resume``: the sweep and the jobs this
    request queued."""

    sweep: SweepOut
    jobs: list[Job]
    message: str
    #: Resume only: the held jobs it released.
    released: list[int] = []


class SweepCancelResponse(Body):
    """``POST /sweeps/{name}/cancel``: the jobs cancelled (or asked to stop)."""

    message: str
    cancelled: list[int]
    count: int


# -- ablation studies ---------------------------------------------------------------------
class AblationCreateRequest(Body):
    """``POST /ablations``: start study ``name`` compared on ``metric``; replicate ``r``
    of every condition runs with seed ``seed_base + r`` (random and recorded if absent)."""

    name: Name
    metric: Annotated[str, Meta(min_length=1, max_length=1000)]
    replicates: Annotated[int, Meta(ge=1, le=10_000)] = 20
    seed_base: Annotated[int, Meta(ge=0, le=2**62)] | None = None


class AblationValuesRequest(Body):
    """``POST /ablations/{name}/baseline`` and ``/deltas``: values (``files``: key -> the
    file its text came from); a delta's name defaults to its first key."""

    values: Values
    files: Files = {}
    delta: Name | None = None


class AblationPlanRequest(Body):
    """``POST /ablations/{name}/plan``: the command template (``{{seed}}``,
    ``{{cfg_path}}``) and the replicates per condition (default: the study's)."""

    command: Argv
    replicates: Annotated[int, Meta(ge=1, le=10_000)] | None = None


class AblationRunRequest(Body):
    """``POST /ablations/{name}/run``: queue the plan's jobs, to run in ``workdir`` on the
    workers."""

    command: Argv
    workdir: Workdir
    replicates: Annotated[int, Meta(ge=1, le=10_000)] | None = None
    options: dict[str, Any] = {}
    #: Run even if the command differs from the study's last one.
    force: bool = False


class AblationDeltaOut(Body):
    """A delta: values that replace the baseline's."""

    name: str
    values: dict[str, Any]
    files: dict[str, str] = {}


class AblationLaunchOut(Body):
    """One ``run`` of the study."""

    command: list[str]
    replicates: int
    workdir: str


class AblationMemberOut(Body):
    """A job of the study (a cell: condition x replicate), with its status and run."""

    job_id: int
    condition: str
    replicate: int
    seed: int
    cfg_path: str = ""
    status: str | None = None
    run_id: str | None = None
    started: bool = False


class AblationOut(Body):
    """An ablation study. ``cfg_path``s are paths on the server's data dir, which its
    workers share."""

    name: str
    metric: str
    seed_base: int
    replicates: int
    created_at: datetime
    baseline: dict[str, Any] = {}
    baseline_files: dict[str, str] = {}
    deltas: list[AblationDeltaOut] = []
    launches: list[AblationLaunchOut] = []
    members: list[AblationMemberOut] = []


class AblationsResponse(Body):
    """``GET /ablations``: every study, oldest first."""

    ablations: list[AblationOut]


class AblationDeltaResponse(Body):
    """``POST /ablations/{name}/deltas``: the study, and whether a delta of that name was
    replaced."""

    ablation: AblationOut
    replaced: bool


class AblationCellOut(Body):
    """A cell ``run`` would queue: its command and config."""

    condition: str
    replicate: int
    seed: int
    cfg_path: str
    argv: list[str]
    config: dict[str, Any]


class AblationPlanResponse(Body):
    """``POST /ablations/{name}/plan``: the cells ``run`` would queue now."""

    cells: list[AblationCellOut]


class AblationRunResponse(Body):
    """``POST /ablations/{name}/run``: the jobs queued (none when every cell is queued or
    done already)."""

    jobs: list[Job]
    message: str


# -- reports: a sweep's best run, an ablation's ranking -----------------------------------
class SweepValueOut(Body):
    """One job of a sweep in its report: its point, status, run and value on the metric."""

    index: int
    job_id: int
    status: str | None
    run_id: str | None
    config: dict[str, Any]
    value: float | None = None


class SweepReportOut(Body):
    """``GET /sweeps/{name}/report``: the sweep, each job's value on ``metric`` (a run's
    summary value, else the last value it logged) and the best one so far."""

    name: str
    sweep: SweepOut
    created_at: datetime
    state: str
    progress: SweepProgressOut
    metric: str | None
    goal: str
    jobs: list[SweepValueOut]
    best: SweepValueOut | None = None


class PairOut(Body):
    """One replicate's metric under the baseline and under the delta (same seed)."""

    replicate: int
    baseline: float
    delta: float


class EffectOut(Body):
    """A delta's effect: the mean paired difference, its bootstrap interval, and how many
    pairs agree with its sign; ``excludes_zero`` when the interval lies on one side."""

    delta: str
    n: int
    effect: float
    ci_low: float | None
    ci_high: float | None
    agree: int
    mean_baseline: float
    mean_delta: float
    pairs: list[PairOut] = []
    excludes_zero: bool = False


class BaselineValuesOut(Body):
    """The baseline's value per replicate."""

    n: int
    values: dict[int, float]


class AblationRankingOut(Body):
    """``GET /ablations/{name}/ranking``: the deltas ranked by effect, strongest first,
    with the jobs still pending, failed or without the metric, and each delta's
    replicates lacking a baseline pair."""

    name: str
    metric: str
    seed_base: int
    baseline: BaselineValuesOut
    effects: list[EffectOut]
    pending: int = 0
    failed: int = 0
    no_metric: int = 0
    unpaired: dict[str, int] = {}
