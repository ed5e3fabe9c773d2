"""``/jobs``: submit, list, claim (long-poll), started, heartbeat, complete, fail, cancel,
cancel-all, retry.

Fencing: every report a worker makes names the attempt it holds; the services reject a
report for an attempt the worker no longer holds (409), so a worker that lost its lease
can neither extend nor finish the job. Workers written for the original API omit
``attempt``: they get the job's current attempt (still fenced by worker id).
"""

from __future__ import annotations

import asyncio
import time
from typing import Literal

import msgspec
from sanic import HTTPResponse, Request

from whirr.api import run_tokens
from whirr.api.routing import Query, Route, backend, int_schema
from whirr.clock import utc_now
from whirr.events import JobUsage, Outcome
from whirr.projections import JobView
from whirr.projections.jobs import ACTIVE_STATUSES, FINISHED_STATUSES, Running
from whirr.projections.queue import Capacity
from whirr.services import run_files as files
from whirr.services.errors import InvalidRequest, LeaseLost
from whirr.services.management import Management
from whirr.services.render import job_out, run_out
from whirr.web.backend import Backend
from whirr.web.http import body, checked_id, query_int, query_str, respond
from whirr.web.stopping import close_after, stopping_event, unless_stopping
from whirr.wire import schemas

#: An idle long-polling worker's liveness is recorded at most this often (seconds).
IDLE_SEEN_EVERY = 10.0
#: A long-poll looks at the queue at least this often even without new events: a retry's
#: backoff running out makes a job claimable without any event announcing it.
RECHECK_EVERY = 1.0
_STATUSES = (*ACTIVE_STATUSES, *FINISHED_STATUSES)


# -- the user side ------------------------------------------------------------------------
async def submit_job(request: Request) -> HTTPResponse:
    """Queue a job. The workdir is checked by the worker that runs it, not here: it lives
    on the worker's machine."""
    req = body(request, schemas.SubmitRequest)
    b = backend(request)
    job = await b.write_and_wake(b.whirr.submit, req)
    return respond(_submitted(b, job, "Submitted"))


def _submitted(b: Backend, job: schemas.Job, verb: str) -> schemas.SubmitResponse:
    return schemas.SubmitResponse(
        job_id=job.id,
        run_id=job.run_id,
        run_dir=str(files.run_dir(b.config.runs_dir, job.run_id)),
        message=f"{verb} job #{job.id}",
    )


async def list_jobs(request: Request) -> HTTPResponse:
    """Jobs newest first; ``status=active`` means queued and running."""
    raw = query_str(request, "status")
    limit = query_int(request, "limit", 100, 1, 10_000)
    statuses: list[str] | None = None
    if raw and raw != "all":
        statuses = raw.split(",")
        for word in statuses:
            if word != "active" and word not in _STATUSES:
                raise InvalidRequest(
                    f"unknown status {word!r} (use active, all or one of {', '.join(_STATUSES)})"
                )
    b = backend(request)
    return respond(schemas.JobsResponse(jobs=await b.read(b.whirr.jobs, statuses, limit)))


async def get_job(request: Request, job_id: int) -> HTTPResponse:
    """One job, with ``waiting`` saying why it is still queued."""
    b = backend(request)
    return respond(await b.read(b.whirr.job, checked_id(job_id)))


async def set_priority(request: Request, job_id: int) -> HTTPResponse:
    """Change a queued job's priority."""
    req = body(request, schemas.PriorityRequest)
    b = backend(request)
    return respond(await b.write_and_wake(b.whirr.set_priority, checked_id(job_id), req.priority))


async def cancel_job(request: Request, job_id: int) -> HTTPResponse:
    """Cancel a queued job now; ask a running job's worker to stop it."""
    b = backend(request)
    return respond(await b.write_and_wake(b.whirr.cancel, checked_id(job_id)))


async def cancel_all(request: Request) -> HTTPResponse:
    """Cancel every queued job."""
    b = backend(request)
    return respond(await b.write_and_wake(b.whirr.cancel_all_queued))


async def retry_job(request: Request, job_id: int) -> HTTPResponse:
    """Queue a failed, cancelled or timed-out job again as a new job."""
    b = backend(request)
    job = await b.write_and_wake(b.whirr.retry, checked_id(job_id))
    return respond(_submitted(b, job, "Retried as"))


# -- the worker side ----------------------------------------------------------------------
async def claim_job(request: Request) -> HTTPResponse:
    """Hand out the next job with a lease; with ``wait``, hold the request until a job
    arrives or ``wait`` seconds pass (an idle worker starts a new job at once)."""
    req = body(request, schemas.ClaimRequest)
    b = backend(request)
    loop = asyncio.get_running_loop()
    deadline = loop.time() + req.wait
    stopping = stopping_event(request)
    first = True
    # A worker that counts what it has free (``free_gpu_ids``/``free_slots``) runs several
    # jobs and long-polls while they run: when one of them ends its count grows, so the
    # poll ends and it asks again with the new count; a drain request ends it too.
    counts = req.free_gpu_ids is not None or req.free_slots is not None
    held = None
    if counts:
        worker = await b.read(b.store.worker, req.worker_id)
        held = None if worker is None else worker.current_job_ids
        if worker is not None and worker.draining:
            return respond(schemas.ClaimResponse(job=None, draining=True))
    while True:
        # Snapshot the head *before* looking: whatever is committed after this wakes us.
        head = b.heads.head
        # After a wake-up, look with a cheap read first: most events are not submits, and
        # a claim is a write that would queue every waiting worker behind the writer.
        if first or bool(await b.read(b.store.claimable_jobs, 1, utc_now())):
            if _gone(request):
                return respond(schemas.ClaimResponse(job=None))
            job = await b.write(_claim, b, req)
            if job is not None:
                out = job_out(job)
                key = request.app.ctx.run_key
                if key is not None:  # the job's WHIRR_TOKEN: its own run, this attempt
                    out = msgspec.structs.replace(
                        out, run_token=run_tokens.mint(key, job.id, job.attempt)
                    )
                return respond(schemas.ClaimResponse(job=out))
        if held is not None and not first:
            worker = await b.read(b.store.worker, req.worker_id)
            if worker is None or worker.draining or worker.current_job_ids != held:
                draining = worker is not None and worker.draining
                return respond(schemas.ClaimResponse(job=None, draining=draining))
        first = False
        remaining = deadline - loop.time()
        if remaining <= 0 or stopping.is_set():
            break
        await unless_stopping(stopping, b.heads.wait_beyond(head, min(remaining, RECHECK_EVERY)))
    if stopping.is_set():
        close_after(request)  # the worker asks again, of the next server
        return respond(schemas.ClaimResponse(job=None))
    await _note_idle(b, req.worker_id)
    return respond(schemas.ClaimResponse(job=None))


def _claim(b: Backend, req: schemas.ClaimRequest) -> JobView | None:
    """Claim through the same ``Jobs.claim`` a local worker uses, with the capacity the
    worker registered; a worker that never registered offers what it says is free, or
    (written for the original API) the GPU it names, or one CPU slot."""
    free = None
    if req.free_gpu_ids is not None or req.free_slots is not None:
        free = Capacity(gpu_ids=tuple(req.free_gpu_ids or ()), slots=req.free_slots or 0)
    capacity = None
    if b.store.worker(req.worker_id) is None:
        if free is not None:
            capacity = free
        elif req.gpu_id is not None:
            capacity = Capacity(gpu_ids=(req.gpu_id,), slots=0)
    return b.jobs.claim(req.worker_id, req.lease_seconds, capacity, free)


def _gone(request: Request) -> bool:
    """True when the client hung up while waiting: claiming for it would strand the job
    until its lease expired."""
    transport = request.transport
    return transport is None or transport.is_closing()


async def _note_idle(b: Backend, worker_id: str) -> None:
    """Record that a registered idle worker is alive, at most every ``IDLE_SEEN_EVERY``."""
    now = time.monotonic()
    if now - b.seen_at.get(worker_id, 0.0) < IDLE_SEEN_EVERY:
        return
    if await b.read(b.store.worker, worker_id) is None:
        return  # unregistered (an old client): nothing to record, nothing to remember
    b.seen_at[worker_id] = now
    await b.write(b.workers.seen, worker_id)


async def job_started(request: Request, job_id: int) -> HTTPResponse:
    """The worker spawned the job's process: the job's run starts."""
    req = body(request, schemas.StartedRequest)
    b = backend(request)
    checked_id(job_id)

    def started() -> JobView:
        job = b.jobs.get(job_id)
        attempt = req.attempt if req.attempt is not None else job.attempt
        return _start(b, job, req.worker_id, attempt, req.pid, req.files, req.run_dir)

    await b.write_and_wake(started)
    return respond(schemas.StartedResponse(success=True))


def _start(
    b: Backend,
    job: JobView,
    worker_id: str,
    attempt: int,
    pid: int,
    files_mode: Literal["shared", "shipped"] | None = None,
    worker_run_dir: str | None = None,
) -> JobView:
    worker = b.store.worker(worker_id)
    shipped = files_mode == "shipped"
    return b.jobs.started(
        job.id,
        worker_id,
        attempt,
        pid,
        # The server's copy is where readers look, whichever way the files get there.
        run_dir=str(files.run_dir(b.config.runs_dir, job.run_id)),
        hostname=worker.hostname if worker else "",
        files_mode=files_mode,
        worker_run_dir=worker_run_dir if shipped else None,
    )


def _current_attempt(b: Backend, job_id: int, worker_id: str) -> int:
    """The attempt an old worker (which sends none) reports on. Such workers never call
    ``started``, so their first report also starts the job's run."""
    job = b.jobs.get(job_id)
    state = job.state
    if isinstance(state, Running) and state.worker_id == worker_id and state.started_at is None:
        _start(b, job, worker_id, job.attempt, state.pid or 0)
    return job.attempt


async def job_size_warning(request: Request, job_id: int) -> HTTPResponse:
    """Record that a running job's run directory passed its worker's warning size
    (``run.size_warning`` on its run); 409 unless the worker runs that attempt."""
    req = body(request, schemas.SizeWarningRequest)
    b = backend(request)
    checked_id(job_id)

    def record() -> schemas.Run:
        job = b.store.job(job_id)
        state = None if job is None else job.state
        if job is None or not (
            isinstance(state, Running)
            and state.worker_id == req.worker_id
            and job.attempt == req.attempt
        ):
            raise LeaseLost(f"job {job_id} attempt {req.attempt} is not run by {req.worker_id}")
        return run_out(Management(b.store).size_warning(job.run_id, req.size, req.limit))

    return respond(await b.write(record))


async def heartbeat_job(request: Request, job_id: int) -> HTTPResponse:
    """Renew the lease; 409 when the worker lost it (it must then kill the job)."""
    req = body(request, schemas.HeartbeatRequest)
    b = backend(request)
    checked_id(job_id)

    def beat() -> JobView:
        attempt = req.attempt
        if attempt is None:
            attempt = _current_attempt(b, job_id, req.worker_id)
        return b.jobs.heartbeat(job_id, req.worker_id, attempt, req.lease_seconds)

    job = await b.write(beat)
    return respond(
        schemas.HeartbeatResponse(
            success=True,
            lease_expires_at=job.lease_expires_at,
            cancel_requested=job.cancel_requested,
        )
    )


async def complete_job(request: Request, job_id: int) -> HTTPResponse:
    """The process exited: 0 completes the job, anything else fails it, and a pending
    cancel makes it ``cancelled``. A stale attempt gets 409 and changes nothing."""
    req = body(request, schemas.CompleteRequest)
    b = backend(request)
    checked_id(job_id)

    def complete() -> JobView:
        attempt = req.attempt
        if attempt is None:
            attempt = _current_attempt(b, job_id, req.worker_id)
        return _finish(
            b, job_id, req.worker_id, attempt, req.exit_code, req.error_message, usage=req.usage
        )

    job = await b.write_and_wake(complete)
    return respond(schemas.Ack(message=f"Job #{job.id} {job.status}", success=True))


async def fail_job(request: Request, job_id: int) -> HTTPResponse:
    """The job could not start or ran out of time: it fails (or ends ``cancelled`` when a
    cancel was pending, or when the worker's operator interrupted it)."""
    req = body(request, schemas.FailRequest)
    b = backend(request)
    checked_id(job_id)
    # An exit code of 0 must not turn a failure report into a completion.
    exit_code = req.exit_code if req.exit_code else None

    def fail() -> JobView:
        job = b.jobs.get(job_id)
        attempt = req.attempt if req.attempt is not None else job.attempt
        outcome: Outcome = "timed_out" if req.timed_out or _past_timeout(job) else "failed"
        if job.cancel_requested or req.interrupted:
            outcome = "cancelled"
        return _finish(
            b,
            job_id,
            req.worker_id,
            attempt,
            exit_code,
            req.error_message or "the worker reported a failure",
            outcome,
            usage=req.usage,
        )

    job = await b.write_and_wake(fail)
    return respond(schemas.Ack(message=f"Job #{job.id} {job.status}", success=True))


def _past_timeout(job: JobView) -> bool:
    """True when a running job has used up its time limit: a worker that reports a failure
    then (the Rust worker says so only in words) stopped it for running too long."""
    started = job.started_at
    if job.timeout_seconds is None or started is None:
        return False
    return (utc_now() - started).total_seconds() >= job.timeout_seconds * 0.99


def _finish(
    b: Backend,
    job_id: int,
    worker_id: str,
    attempt: int,
    exit_code: int | None,
    error: str | None,
    outcome: Outcome | None = None,
    *,
    usage: JobUsage | None = None,
) -> JobView:
    try:
        return b.jobs.finish(
            job_id, worker_id, attempt, exit_code, error=error, outcome=outcome, usage=usage
        )
    except LeaseLost:
        # A report sent twice (the first answer got lost on the network) is not an error;
        # a report for an attempt someone else ended (the lease reaper, which records no
        # exit code) is stale like any other: 409.
        job = b.jobs.get(job_id)
        same_report = job.exit_code == exit_code and (exit_code is not None or job.error == error)
        if (
            job.finished_at is not None
            and job.worker_id == worker_id
            and job.attempt == attempt
            and same_report
        ):
            return job
        raise


_JOB = "/jobs/<job_id:int>"
ROUTES = [
    Route(
        "POST",
        "/jobs",
        submit_job,
        "Queue a command as a job.",
        body=schemas.SubmitRequest,
        response=schemas.SubmitResponse,
        scope="submit",
    ),
    Route(
        "GET",
        "/jobs",
        list_jobs,
        "List jobs, newest first.",
        response=schemas.JobsResponse,
        query=(
            Query(
                "status",
                {"type": "string", "maxLength": 200},
                "active, all, or comma-separated statuses",
            ),
            Query("limit", int_schema(1, 10_000, 100)),
        ),
    ),
    Route(
        "POST",
        "/jobs/claim",
        claim_job,
        "Claim the next job (long-polls with wait).",
        body=schemas.ClaimRequest,
        response=schemas.ClaimResponse,
        scope="worker",
    ),
    Route(
        "POST",
        "/jobs/cancel-all",
        cancel_all,
        "Cancel every queued job.",
        response=schemas.CancelAllResponse,
        scope="submit",
    ),
    Route("GET", _JOB, get_job, "One job.", response=schemas.Job),
    Route(
        "POST",
        f"{_JOB}/started",
        job_started,
        "The worker spawned the job's process.",
        body=schemas.StartedRequest,
        response=schemas.StartedResponse,
        scope="worker",
    ),
    Route(
        "POST",
        f"{_JOB}/size_warning",
        job_size_warning,
        "The job's run directory passed the worker's warning size.",
        body=schemas.SizeWarningRequest,
        response=schemas.Run,
        scope="worker",
    ),
    Route(
        "POST",
        f"{_JOB}/heartbeat",
        heartbeat_job,
        "Renew the lease; learn of cancels.",
        body=schemas.HeartbeatRequest,
        response=schemas.HeartbeatResponse,
        scope="worker",
    ),
    Route(
        "POST",
        f"{_JOB}/complete",
        complete_job,
        "The job's process exited.",
        body=schemas.CompleteRequest,
        response=schemas.Ack,
        scope="worker",
    ),
    Route(
        "POST",
        f"{_JOB}/fail",
        fail_job,
        "The job could not start or timed out.",
        body=schemas.FailRequest,
        response=schemas.Ack,
        scope="worker",
    ),
    Route(
        "POST",
        f"{_JOB}/cancel",
        cancel_job,
        "Cancel a job.",
        response=schemas.CancelResponse,
        scope="submit",
    ),
    Route(
        "POST",
        f"{_JOB}/priority",
        set_priority,
        "Change a queued job's priority.",
        body=schemas.PriorityRequest,
        response=schemas.Job,
        scope="submit",
    ),
    Route(
        "POST",
        f"{_JOB}/retry",
        retry_job,
        "Queue a failed or cancelled job again.",
        response=schemas.SubmitResponse,
        scope="submit",
    ),
]
