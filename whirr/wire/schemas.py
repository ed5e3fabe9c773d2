"""Request and response bodies of the HTTP API (``/api/v1``), as msgspec Structs.

These Structs are the protocol: the server decodes requests and encodes responses with
them, ``whirr.client`` decodes responses with them, the OpenAPI document is generated
from them, and ``tests/fixtures/protocol/`` (shared with the Rust worker) must decode with
them. Imports nothing but msgspec (and the bounds in ``whirr.events.bounds`` and the
``JobUsage`` struct of ``whirr.events.usage``, shared with the events), so the client stays
light.

Evolution rules: requests ignore unknown keys and new fields get defaults (old clients
keep working); responses only gain keys.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

import msgspec
from msgspec import Meta

# -- bounded scalars: out-of-range input is a 422, never a 500 from deeper down ----------
# One set of limits for the HTTP bodies, the events the log accepts and the CLI parsers.
from whirr.events.bounds import (
    Attempt,
    Cpus,
    GpuId,
    Gpus,
    Int32,
    JobId,
    MaxAttempts,
    MemoryBytes,
    Pid,
    Priority,
    Retries,
    RetryDelay,
    Slots,
    TimeoutSeconds,
)
from whirr.events.usage import JobUsage

LeaseSeconds = Annotated[float, Meta(ge=10, le=600)]
WaitSeconds = Annotated[float, Meta(ge=0, le=60)]
WorkerId = Annotated[str, Meta(min_length=1, max_length=200)]
Text = Annotated[str, Meta(max_length=100_000)]
ShortText = Annotated[str, Meta(max_length=1_000)]
Arg = Annotated[str, Meta(max_length=100_000)]
Argv = Annotated[list[Arg], Meta(min_length=1, max_length=10_000)]
Tag = Annotated[str, Meta(max_length=200)]


class Body(msgspec.Struct, kw_only=True):
    """Base of every body: keyword-only fields, unknown keys ignored."""


# -- workers ------------------------------------------------------------------------------
class RegisterRequest(Body):
    """``POST /workers/register``."""

    worker_id: WorkerId
    hostname: ShortText = ""
    gpu_ids: Annotated[list[GpuId], Meta(max_length=256)] = []
    #: CPU-only jobs the worker runs at once (``whirr worker --slots``); None: 1.
    slots: Slots | None = None
    #: The worker's process id on its machine (shown by ``whirr workers``).
    pid: Pid | None = None


class UnregisterRequest(Body):
    """``POST /workers/unregister``."""

    worker_id: WorkerId


class Ack(Body):
    """The ``{message, success}`` answer of most mutating routes."""

    message: str | None = None
    success: bool = True


class RegisterResponse(Ack):
    """``POST /workers/register``: an ``Ack`` with the server's id (see ``HealthResponse``)."""

    server_id: str | None = None


class WorkerOut(Body):
    """One worker in ``GET /workers``. ``status`` is ``idle``, ``busy``, ``offline`` (not
    heard from within the worker timeout) or ``stopped``."""

    id: str
    hostname: str
    gpu_id: int | None
    status: str
    current_job_id: int | None
    heartbeat_at: datetime
    gpu_ids: list[int] = []
    current_job_ids: list[int] = []
    online: bool = False
    registered_at: datetime | None = None
    pid: int | None = None
    #: CPU-only jobs it runs at once (``whirr worker --slots``).
    slots: int = 1
    draining: bool = False


class WorkersResponse(Body):
    """``GET /workers``."""

    workers: list[WorkerOut]


# -- jobs ---------------------------------------------------------------------------------
class SubmitRequest(Body):
    """``POST /jobs``: queue ``command_argv`` to run in ``workdir`` on a worker machine."""

    command_argv: Argv
    workdir: Annotated[str, Meta(min_length=1, max_length=4096)]
    name: ShortText | None = None
    config: dict[str, Any] | None = None
    tags: Annotated[list[Tag], Meta(max_length=100)] | None = None
    env: (
        Annotated[
            dict[Annotated[str, Meta(min_length=1, max_length=1000)], Text], Meta(max_length=1000)
        ]
        | None
    ) = None
    priority: Priority = 0
    max_attempts: MaxAttempts | None = None
    #: GPUs the job needs (None: one on a GPU worker, none elsewhere).
    gpus: Gpus | None = None
    #: Jobs that must end first (completed, or in any way with ``after_any``).
    after: Annotated[list[JobId], Meta(max_length=1000)] = []
    after_any: bool = False
    #: Failed attempts to retry, ``retry_delay`` seconds apart (growing).
    retries: Retries = 0
    retry_delay: RetryDelay | None = None
    #: Wall-clock limit; the worker stops the job after it (``timed_out``).
    timeout_seconds: TimeoutSeconds | None = None
    #: Memory / CPU limits of the whole job, where its worker can set them (cgroup v2
    #: with the memory / cpu controller; elsewhere the job runs unlimited and its log
    #: says so: ``whirr doctor`` tells which).
    memory_bytes: MemoryBytes | None = None
    cpus: Cpus | None = None
    #: Run a snapshot of the workdir taken now, not the live directory (None: the
    #: project's default). Taken where the files are: a local project only.
    snapshot: bool | None = None


class SubmitResponse(Body):
    """Answer to a submit (and a retry: ``job_id`` is the new job)."""

    job_id: int
    run_id: str
    run_dir: str
    message: str


class Job(Body):
    """A job as the API shows it (the SPEC keys first; more keys only get added)."""

    id: int
    name: str | None
    command_argv: list[str]
    workdir: str
    config: dict[str, Any]
    tags: list[str]
    status: str
    attempt: int
    worker_id: str | None
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    exit_code: int | None
    run_id: str
    lease_expires_at: datetime | None = None
    env: dict[str, str] | None = None
    timeout_seconds: float | None = None
    memory_bytes: int | None = None
    cpus: float | None = None
    parent_job_id: int | None = None
    priority: int = 0
    max_attempts: int = 3
    cancel_requested: bool = False
    error: str | None = None
    first_attempt: int = 1
    #: GPUs the running attempt was given (its worker sets CUDA_VISIBLE_DEVICES to them).
    gpu_ids: list[int] = []
    gpus: int | None = None
    after: list[int] = []
    retries: int = 0
    after_any: bool = False
    #: Dependencies (``after``) that have not ended yet as required.
    waiting_on: list[int] = []
    #: Attempts that failed and were retried (``retries`` of them may be).
    failed_attempts: int = 0
    #: A failed job waiting to be retried starts no earlier than this.
    not_before: datetime | None = None
    #: The content digest of the code snapshot the job runs in (``--snapshot``).
    snapshot: str | None = None
    #: Why a queued job is not running yet, when something other than a free worker is
    #: missing (a dependency, a retry delay, no worker with enough GPUs, a paused queue).
    waiting: str | None = None
    #: Only in a claim's answer: the token the worker gives the job as ``WHIRR_TOKEN``,
    #: good for recording its own run during this attempt (``whirr.api.run_tokens``).
    run_token: str | None = None
    #: What the ended job's last attempt used (CPU seconds, memory peak), where its
    #: worker held it in a cgroup; None otherwise.
    usage: JobUsage | None = None


class JobsResponse(Body):
    """``GET /jobs``."""

    jobs: list[Job]


class ClaimRequest(Body):
    """``POST /jobs/claim``: ``wait`` > 0 holds the request (long-poll) until a job is
    available or that many seconds pass."""

    worker_id: WorkerId
    gpu_id: GpuId | None = None
    lease_seconds: LeaseSeconds = 60
    wait: WaitSeconds = 0
    #: What the worker has free now, by its own count (``whirr worker --server`` sends
    #: both): the claim hands out only what is free by this count *and* by the server's
    #: (the jobs it holds). A worker that sends neither gets what it registered, less
    #: the jobs it holds; one that sends only one of them has none of the other free.
    free_gpu_ids: Annotated[list[GpuId], Meta(max_length=256)] | None = None
    free_slots: Slots | None = None


class ClaimResponse(Body):
    """A claimed job, or ``null`` when the queue stayed empty."""

    job: Job | None
    #: The worker was asked to drain (``whirr drain``): it claims nothing more, finishes
    #: its jobs and exits. Told to workers that send ``free_gpu_ids``/``free_slots``.
    draining: bool = False


class StartedRequest(Body):
    """``POST /jobs/{id}/started``: the worker spawned the job's process."""

    worker_id: WorkerId
    attempt: Attempt | None = None
    pid: Pid = 0
    #: How the job's run files reach the server: written in place on a filesystem the
    #: worker shares with it (``shared``), or shipped (``shipped``: ``/runs/{id}/files``).
    #: Absent: ``shared`` (workers from before issue 16).
    files: Literal["shared", "shipped"] | None = None
    #: The run directory on the worker's machine (shown when the files are shipped).
    run_dir: Annotated[str, Meta(max_length=4096)] | None = None


class StartedResponse(Body):
    """Answer to ``started``."""

    success: bool = True


class HeartbeatRequest(Body):
    """``POST /jobs/{id}/heartbeat``: renew the lease for ``lease_seconds`` from now."""

    worker_id: WorkerId
    lease_seconds: LeaseSeconds = 60
    attempt: Attempt | None = None


class SizeWarningRequest(Body):
    """``POST /jobs/{id}/size_warning``: the worker running this attempt measured its run
    directory at ``size`` bytes, past its warning size ``limit``."""

    worker_id: WorkerId
    attempt: Attempt
    size: Annotated[int, Meta(ge=0, le=2**63 - 1)]
    limit: Annotated[int, Meta(ge=0, le=2**63 - 1)]


class HeartbeatResponse(Body):
    """Answer to a heartbeat; a lost lease is a 409 ``ErrorBody`` instead."""

    success: bool
    lease_expires_at: datetime | None
    cancel_requested: bool


class CompleteRequest(Body):
    """``POST /jobs/{id}/complete``: the process exited (minus the signal number when a
    signal ended it)."""

    worker_id: WorkerId
    exit_code: Int32
    run_id: ShortText | None = None
    error_message: Text | None = None
    attempt: Attempt | None = None
    #: What the job used (its cgroup's accounting); absent from workers without one and
    #: from older workers.
    usage: JobUsage | None = None


class FailRequest(Body):
    """``POST /jobs/{id}/fail``: the job could not start, ran out of time, or was
    interrupted by its worker's operator."""

    worker_id: WorkerId
    error_message: Text = ""
    attempt: Attempt | None = None
    exit_code: Int32 | None = None
    #: The job ran past its ``timeout_seconds`` (it ends ``timed_out``).
    timed_out: bool = False
    #: The worker's operator stopped it (a second Ctrl+C): it ends ``cancelled``, and no
    #: retry is scheduled. Older workers never send it (False).
    interrupted: bool = False
    #: What the job used (its cgroup's accounting), where known.
    usage: JobUsage | None = None


class CancelResponse(Body):
    """``POST /jobs/{id}/cancel``."""

    message: str
    previous_status: str
    status: str = ""


class CancelAllResponse(Body):
    """``POST /jobs/cancel-all``: every queued job was cancelled."""

    message: str
    cancelled: list[int]
    count: int


# -- runs ---------------------------------------------------------------------------------
class ArtifactOut(Body):
    """A file of a run: by path relative to its directory in ``GET /runs/{id}/artifacts``
    (``output.log``, ``artifacts/model.pt``), relative to its ``artifacts/`` from the
    facades' ``artifacts``."""

    path: str
    size: int
    modified: datetime


class SavedArtifact(Body):
    """An artifact as the run's events recorded it (``run.artifact_saved``)."""

    path: str
    size: int
    saved_at: datetime
    #: Hex SHA-256 of the content, when recorded (uploaded artifacts).
    sha256: str | None = None
    #: ``s3`` when the server's S3 artifact store holds it; None: the run's directory.
    stored_in: str | None = None


class SizeWarning(Body):
    """The run's directory passed the size its worker warns at (``run.size_warning``):
    the size measured, the limit, and when."""

    size: int
    limit: int
    at: datetime


class Run(Body):
    """A run as the API shows it."""

    id: str
    job_id: int | None
    name: str | None
    config: dict[str, Any]
    tags: list[str]
    status: str
    started_at: datetime
    finished_at: datetime | None
    duration_seconds: float | None
    summary: dict[str, Any]
    hostname: str
    run_dir: str
    exit_code: int | None = None
    error: str | None = None
    git: dict[str, Any] | None = None
    #: Artifacts the run recorded saving (the files: ``GET /runs/{id}/artifacts``).
    artifacts: list[SavedArtifact] = []
    #: The tracked process (a direct run's own script, a job's command).
    pid: int | None = None
    #: Where the run's files are written: ``shared`` (in place, on the server's
    #: filesystem), ``shipped`` (on the worker's machine, sent to the server) or
    #: ``local``; None: not said (a job's files in ``run_dir``, as before issue 16).
    files_mode: str | None = None
    #: The run directory on the worker's machine, when it ships the files.
    worker_run_dir: str | None = None
    #: The run's note (``whirr runs note``); empty: none.
    notes: str = ""
    #: Hidden from default listings (``whirr runs archive``).
    archived: bool = False
    #: The latest crossing of the worker's run-directory size warning; None: none.
    size_warning: SizeWarning | None = None


class RunsResponse(Body, omit_defaults=True):
    """``GET /runs``. Asked for a page (``sort``, ``order``, ``offset``, ``q`` or
    ``counts``), it also says how many runs match and, with ``counts``, how many runs
    have each status; a plain listing's answer is ``{"runs": [...]}`` alone, as ever."""

    runs: list[Run]
    #: How many runs match the filters in all (a page's answer only).
    matched: int | None = None
    #: Runs per status, archived ones as the ``archived`` filter says (``counts=true``).
    statuses: dict[str, int] | None = None


class MetricsResponse(Body):
    """``GET /runs/{id}/metrics``: the rows of ``metrics.jsonl``."""

    metrics: list[dict[str, Any]]
    count: int
    #: Where ``metrics.jsonl`` stands on the server (``X-Whirr-Files``): ``live``,
    #: ``complete``, ``pending``, ``missing_tail`` when shipped, else ``shared``/``local``.
    files: str | None = None
    #: Damaged lines left out of these rows, one message each naming its line (None: none).
    warnings: list[str] | None = None


class SystemResponse(Body):
    """``GET /runs/{id}/system``: samples of ``system.jsonl``; ``next`` is the ``since``
    that asks for the samples after these."""

    samples: list[dict[str, Any]]
    count: int
    next: int
    #: Where ``system.jsonl`` stands on the server (as ``MetricsResponse.files``).
    files: str | None = None
    #: Damaged lines left out of these samples (as ``MetricsResponse.warnings``).
    warnings: list[str] | None = None


class ArtifactsResponse(Body):
    """``GET /runs/{id}/artifacts``."""

    artifacts: list[ArtifactOut]
    count: int


# -- the rest -----------------------------------------------------------------------------
class StatusResponse(Body):
    """``GET /status``: job counts per status and worker counts."""

    queued: int
    running: int
    completed: int
    failed: int
    workers_online: int
    workers_total: int
    cancelled: int = 0
    timed_out: int = 0
    head: int = 0
    #: The kind of event store answering: ``sqlite``, ``postgres`` or ``memory``.
    store: str = ""


class HealthResponse(Body):
    """``GET /health`` (no token needed)."""

    status: str
    #: The server's whirr version and wire protocol (``whirr.wire.protocol``).
    version: str | None = None
    protocol: int | None = None
    #: The server's id (``<data-dir>/server-id``): a worker whose data dir holds the same
    #: id shares the server's filesystem and ships no run files.
    server_id: str | None = None


class EventOut(Body):
    """One event of ``GET /events`` (the ``data:`` of a server-sent event)."""

    position: int
    recorded_at: datetime
    stream: str
    type: str
    event: dict[str, Any]


class ArchivedSegment(Body):
    """One archive segment of the log (``whirr log segments``): the positions of its
    first and last events, and its file on the machine that keeps the log."""

    first: int
    last: int
    path: str
    pending: bool = False


class LogArchiveResponse(Body):
    """``GET /log/archive``: where retention moved old liveness events of the log
    (``directory``: None when the log has no archive place, a server's PostgreSQL log
    without its data dir)."""

    directory: str | None
    segments: list[ArchivedSegment]


class ErrorBody(Body):
    """Every 4xx/5xx answer. ``detail`` is normally a string."""

    detail: Any


#: Request bodies by route, for the OpenAPI document and the fixture test.
REQUESTS: dict[str, type[Body]] = {
    "RegisterRequest": RegisterRequest,
    "UnregisterRequest": UnregisterRequest,
    "SubmitRequest": SubmitRequest,
    "ClaimRequest": ClaimRequest,
    "StartedRequest": StartedRequest,
    "HeartbeatRequest": HeartbeatRequest,
    "CompleteRequest": CompleteRequest,
    "FailRequest": FailRequest,
}

#: Every named body type (requests and responses).
TYPES: dict[str, type[Body]] = {
    **REQUESTS,
    **{
        cls.__name__: cls
        for cls in (
            Ack,
            RegisterResponse,
            WorkerOut,
            WorkersResponse,
            SubmitResponse,
            Job,
            JobsResponse,
            ClaimResponse,
            StartedResponse,
            HeartbeatResponse,
            CancelResponse,
            CancelAllResponse,
            ArtifactOut,
            SavedArtifact,
            Run,
            RunsResponse,
            MetricsResponse,
            SystemResponse,
            ArtifactsResponse,
            StatusResponse,
            HealthResponse,
            EventOut,
            ErrorBody,
        )
    },
}


class QueueOut(Body):
    """``GET /queue``: whether workers may claim, and how many jobs wait or run."""

    paused: bool
    since: datetime | None = None
    reason: str = ""
    queued: int = 0
    running: int = 0


class QueuePauseRequest(Body):
    """``POST /queue/pause``."""

    reason: Annotated[str, Meta(max_length=1000)] = ""


class QueueChangeResponse(Body):
    """``POST /queue/pause`` and ``/queue/resume``: ``changed`` is false when the queue
    already was in that state."""

    changed: bool
    queue: QueueOut


class PriorityRequest(Body):
    """``POST /jobs/{id}/priority``."""

    priority: Priority


#: The most bytes one ``read_run_file`` answers with, unless told otherwise.
RUN_FILE_PAGE = 16 << 20


class RunFileChunk(Body):
    """Whole lines of a run's ``metrics.jsonl`` or ``system.jsonl`` from byte ``offset``
    (``GET /runs/{id}/raw/{file}`` sends ``data`` as the body, ``size`` as the
    ``X-Whirr-Size`` header). A line still being written is left for the next read."""

    data: bytes
    offset: int
    #: The file's size when it was read (more may follow while ``offset + len(data)`` is
    #: below it).
    size: int


class TailResponse(Body):
    """``GET /runs/{id}/tail``: the last rows of ``metrics.jsonl`` or ``system.jsonl``."""

    rows: list[dict[str, Any]]
    count: int
    #: Damaged lines left out of these rows (as ``MetricsResponse.warnings``).
    warnings: list[str] | None = None
