"""``WhirrClient``: the Python client of a whirr server's HTTP API (``/api/v1``).

    from whirr.client import WhirrClient
    with WhirrClient("http://head-node:8080") as client:      # token from WHIRR_TOKEN
        job = client.submit_and_wait(["python", "train.py", "--lr", "0.1"], timeout=3600)
        print(job.status, client.metrics(job.run_id)[-1])

Every route has a method (those of sweeps and ablations are in ``whirr.client_studies``);
answers are the msgspec Structs of ``whirr.wire.schemas``.
Errors raise ``whirr.services.errors`` types (``NotFound``, ``InvalidState``/``LeaseLost``,
``InvalidRequest``) or ``AuthError``/``ServerUnreachable``/``ServerError`` from here, all
``WhirrError``s with a message fit for a user.
"""

from __future__ import annotations

import os
import socket
import ssl
import threading
import time
import warnings
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any, Literal, TypeVar
from urllib.parse import quote

import msgspec

from whirr._httpx import httpx
from whirr.client_studies import StudyCalls
from whirr.filemodes import ChecksumMismatch, save_stream
from whirr.run import SkippedLine
from whirr.services.errors import (
    InvalidRequest,
    InvalidState,
    LeaseLost,
    NotFound,
    OffsetGap,
    StaleAttempt,
    WhirrError,
)
from whirr.wire import protocol, schemas
from whirr.wire.artifact_uploads import (
    ArtifactUploadSize,
    CompleteArtifactRequest,
    DownloadedArtifact,
    StoredArtifact,
)
from whirr.wire.run_events import (
    RunArtifactRequest,
    RunAttachRequest,
    RunFinishRequest,
    RunStartRequest,
    RunSummaryRequest,
)
from whirr.wire.run_manage import (
    ArchivedFilter,
    CleanRequest,
    CleanResponse,
    RunConfigRequest,
    RunDeleteResponse,
    RunNoteRequest,
    RunRenameRequest,
    RunTagsRequest,
)
from whirr.wire.shipping import FinalFilesRequest, RunFiles, UploadAnswer

T = TypeVar("T")
_encoder = msgspec.json.Encoder()
_decode_error = msgspec.json.Decoder(schemas.ErrorBody).decode
_decode_event = msgspec.json.Decoder(schemas.EventOut).decode
#: Where a run keeps the files a user saved; the server lists paths relative to the run.
_ARTIFACTS = "artifacts/"
_FINISHED = ("completed", "failed", "cancelled", "timed_out")
#: Rows per page when reading a whole metrics file (the API's largest default page).
METRICS_PAGE = 100_000
#: Bytes read from a download's body at a time.
_DOWNLOAD_CHUNK = 1 << 20


class AuthError(WhirrError):
    """The server wants a (different) token: set WHIRR_TOKEN."""

    status = 401


class ServerUnreachable(WhirrError):
    """No answer from the server (down, wrong URL, network)."""

    status = 503


class UpgradeRequired(WhirrError):
    """Client and server speak wire protocols too far apart (``whirr.wire.protocol``);
    the message says which one to upgrade."""

    status = 426


class ServerError(WhirrError):
    """The server failed (5xx) or answered something unexpected."""

    status = 500


def api_base(url: str) -> str:
    """``http://host:8080`` or ``.../api/v1`` -> ``http://host:8080/api/v1``."""
    url = url.rstrip("/")
    return url if url.endswith("/api/v1") else f"{url}/api/v1"


class WhirrClient(StudyCalls):
    """A blocking client for one server. ``url`` defaults to ``WHIRR_SERVER_URL`` and
    ``token`` to ``WHIRR_TOKEN``; ``timeout`` bounds each request (long-polls get more)."""

    def __init__(
        self, url: str | None = None, token: str | None = None, timeout: float = 30.0
    ) -> None:
        url = url or os.environ.get("WHIRR_SERVER_URL")
        if not url:
            raise InvalidRequest("no server URL: pass one or set WHIRR_SERVER_URL")
        token = token if token is not None else os.environ.get("WHIRR_TOKEN")
        self.url = api_base(url)
        #: The bearer token sent (a remote worker hands it to its jobs).
        self.token = token or None
        headers = {"User-Agent": "whirr-client", protocol.HEADER: str(protocol.CURRENT)}
        if token:
            headers["Authorization"] = f"Bearer {token}"
        self.timeout = timeout
        self._http = httpx.Client(
            base_url=self.url, headers=headers, timeout=timeout, verify=_verify(self.url)
        )

    # -- plumbing -----------------------------------------------------------------------
    def close(self) -> None:
        """Close the connection pool."""
        self._http.close()

    def __enter__(self) -> WhirrClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _send(
        self,
        method: str,
        path: str,
        *,
        body: Any = None,
        params: dict[str, Any] | None = None,
        timeout: float | None = None,
        conflict: type[WhirrError] = InvalidState,
        raw: bytes | None = None,
    ) -> httpx.Response:
        content = None if body is None else _encoder.encode(body)
        headers = {"Content-Type": "application/json"} if content is not None else None
        if raw is not None:
            content, headers = raw, {"Content-Type": "application/octet-stream"}
        try:
            resp = self._http.request(
                method,
                path,
                content=content,
                headers=headers,
                params=_clean(params),
                timeout=timeout if timeout is not None else self.timeout,
            )
        except httpx.TransportError as exc:
            raise ServerUnreachable(f"cannot reach the whirr server at {self.url}: {exc}") from exc
        if resp.status_code >= 400:
            raise _error(resp, conflict)
        return resp

    def _call(self, method: str, path: str, kind: type[T], **kwargs: Any) -> T:
        resp = self._send(method, path, **kwargs)
        try:
            return msgspec.json.decode(resp.content, type=kind)
        except msgspec.DecodeError as exc:
            raise ServerError(f"unexpected answer from {method} {path}: {exc}") from exc

    # -- system -------------------------------------------------------------------------
    def health(self) -> schemas.HealthResponse:
        """``GET /health``."""
        return self._call("GET", "/health", schemas.HealthResponse)

    def status(self) -> schemas.StatusResponse:
        """Job counts per status and worker counts."""
        return self._call("GET", "/status", schemas.StatusResponse)

    def openapi(self) -> dict[str, Any]:
        """The server's OpenAPI document."""
        return self._call("GET", "/openapi.json", dict[str, Any])

    # -- jobs ---------------------------------------------------------------------------
    def submit(
        self,
        command_argv: Sequence[str],
        workdir: str | None = None,
        *,
        name: str | None = None,
        config: dict[str, Any] | None = None,
        tags: Sequence[str] = (),
        env: dict[str, str] | None = None,
        priority: int = 0,
        max_attempts: int | None = None,
        gpus: int | None = None,
        after: Sequence[int] = (),
        after_any: bool = False,
        retries: int = 0,
        retry_delay: float | None = None,
        timeout_seconds: float | None = None,
    ) -> schemas.SubmitResponse:
        """Queue ``command_argv`` to run in ``workdir`` (default: the cwd) on a worker.
        The scheduling options are those of ``whirr submit`` (see ``SubmitRequest``)."""
        req = schemas.SubmitRequest(
            command_argv=list(command_argv),
            workdir=workdir or os.getcwd(),
            name=name,
            config=config,
            tags=list(tags),
            env=env,
            priority=priority,
            max_attempts=max_attempts,
            gpus=gpus,
            after=list(after),
            after_any=after_any,
            retries=retries,
            retry_delay=retry_delay,
            timeout_seconds=timeout_seconds,
        )
        return self._call("POST", "/jobs", schemas.SubmitResponse, body=req)

    def get_job(self, job_id: int) -> schemas.Job:
        """One job."""
        return self._call("GET", f"/jobs/{job_id}", schemas.Job)

    def list_jobs(self, status: str | None = None, limit: int = 100) -> list[schemas.Job]:
        """Jobs newest first; ``status`` is ``active``, ``all`` or comma-separated."""
        params = {"status": status, "limit": limit}
        return self._call("GET", "/jobs", schemas.JobsResponse, params=params).jobs

    def cancel(self, job_id: int) -> schemas.CancelResponse:
        """Cancel a job (a running one stops at its worker's next heartbeat)."""
        return self._call("POST", f"/jobs/{job_id}/cancel", schemas.CancelResponse)

    def cancel_all_queued(self) -> schemas.CancelAllResponse:
        """Cancel every queued job."""
        return self._call("POST", "/jobs/cancel-all", schemas.CancelAllResponse)

    def retry(self, job_id: int) -> schemas.SubmitResponse:
        """Queue a failed or cancelled job again (a new job)."""
        return self._call("POST", f"/jobs/{job_id}/retry", schemas.SubmitResponse)

    def submit_spec(self, spec: schemas.SubmitRequest) -> schemas.SubmitResponse:
        """Queue the job ``spec`` describes (every option of ``submit``)."""
        return self._call("POST", "/jobs", schemas.SubmitResponse, body=spec)

    def set_priority(self, job_id: int, priority: int) -> schemas.Job:
        """Change a queued job's priority."""
        req = schemas.PriorityRequest(priority=priority)
        return self._call("POST", f"/jobs/{job_id}/priority", schemas.Job, body=req)

    def queue(self) -> schemas.QueueOut:
        """Whether workers may claim new jobs."""
        return self._call("GET", "/queue", schemas.QueueOut)

    def pause_queue(self, reason: str = "") -> schemas.QueueChangeResponse:
        """Stop workers from claiming new jobs."""
        req = schemas.QueuePauseRequest(reason=reason)
        return self._call("POST", "/queue/pause", schemas.QueueChangeResponse, body=req)

    def resume_queue(self) -> schemas.QueueChangeResponse:
        """Let workers claim jobs again."""
        return self._call("POST", "/queue/resume", schemas.QueueChangeResponse)

    def drain_worker(self, worker_id: str) -> schemas.WorkerOut:
        """Ask a worker to finish its jobs, claim nothing new, and exit."""
        return self._call("POST", f"/workers/{worker_id}/drain", schemas.WorkerOut)

    def wait_for_job(self, job_id: int, timeout: float | None = None) -> schemas.Job:
        """Block until the job ends; returns it. Raises ``TimeoutError`` after ``timeout``.
        Follows the server's event stream, so it returns as soon as the job ends."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            head = self.status().head
            job = self.get_job(job_id)
            if job.status in _FINISHED:
                return job
            if deadline is not None and time.monotonic() >= deadline:
                raise TimeoutError(f"job #{job_id} still {job.status} after {timeout} s")
            try:
                # Ends at the deadline even on a quiet stream (see ``events``).
                for event in self.events(after=head, types=["job.finished"], deadline=deadline):
                    if event.event.get("job_id") == job_id:
                        return self.get_job(job_id)
            except ServerUnreachable:
                # A restarting server: look again (within the deadline).
                pause = 0.5 if deadline is None else deadline - time.monotonic()
                time.sleep(min(0.5, max(0.0, pause)))

    def submit_and_wait(
        self,
        command_argv: Sequence[str],
        workdir: str | None = None,
        *,
        timeout: float | None = None,
        **options: Any,
    ) -> schemas.Job:
        """``submit`` then ``wait_for_job``: the finished job."""
        submitted = self.submit(command_argv, workdir, **options)
        return self.wait_for_job(submitted.job_id, timeout=timeout)

    def logs(self, job_id: int, offset: int = 0) -> bytes:
        """The job's output so far, from byte ``offset``."""
        params = {"offset": offset}
        return self._send("GET", f"/jobs/{job_id}/logs", params=params).content

    def log_tail(self, job_id: int, max_bytes: int) -> tuple[int, bytes]:
        """The last ``max_bytes`` (at most) of the job's output and the offset they start
        at (a server without ``tail`` sends it all: cut here)."""
        resp = self._send("GET", f"/jobs/{job_id}/logs", params={"tail": max(0, max_bytes)})
        start = int(resp.headers.get("X-Whirr-Offset") or 0)
        data = resp.content
        if len(data) > max_bytes:
            start, data = start + len(data) - max_bytes, data[len(data) - max_bytes :]
        return start, data

    def follow_logs(self, job_id: int, offset: int = 0) -> Iterator[bytes]:
        """The job's output as it is written, until the job ends (chunks of bytes)."""
        while True:
            params: dict[str, Any] = {"offset": offset, "follow": "true"}
            try:
                with self._http.stream(
                    "GET",
                    f"/jobs/{job_id}/logs",
                    params=params,
                    timeout=httpx.Timeout(self.timeout, read=120),
                ) as resp:
                    if resp.status_code >= 400:
                        resp.read()
                        raise _error(resp, InvalidState)
                    for chunk in resp.iter_bytes():
                        offset += len(chunk)
                        yield chunk
            except httpx.TransportError as exc:
                raise ServerUnreachable(f"lost the log stream from {self.url}: {exc}") from exc
            # The server closes a quiet stream now and then; go on unless the job ended.
            if self.get_job(job_id).status in _FINISHED:
                tail = self.logs(job_id, offset)
                if tail:
                    yield tail
                return

    # -- the worker side ----------------------------------------------------------------
    def register_worker(
        self,
        worker_id: str,
        hostname: str,
        gpu_ids: Sequence[int] = (),
        slots: int | None = None,
        pid: int | None = None,
    ) -> schemas.RegisterResponse:
        """Announce a worker with the GPUs and CPU-only slots it offers (the answer
        carries the server's id: ``server_id``)."""
        req = schemas.RegisterRequest(
            worker_id=worker_id, hostname=hostname, gpu_ids=list(gpu_ids), slots=slots, pid=pid
        )
        return self._call("POST", "/workers/register", schemas.RegisterResponse, body=req)

    def unregister_worker(self, worker_id: str) -> schemas.Ack:
        """A worker shuts down."""
        req = schemas.UnregisterRequest(worker_id=worker_id)
        return self._call("POST", "/workers/unregister", schemas.Ack, body=req)

    def list_workers(self, forgotten: bool = False) -> list[schemas.WorkerOut]:
        """The workers heard from lately (``forgotten``: every one ever registered)."""
        params = {"forgotten": "true"} if forgotten else None
        return self._call("GET", "/workers", schemas.WorkersResponse, params=params).workers

    def log_archive(self) -> schemas.LogArchiveResponse:
        """Where the server's retention moved old liveness events (``GET /log/archive``)."""
        return self._call("GET", "/log/archive", schemas.LogArchiveResponse)

    def claim(
        self,
        worker_id: str,
        *,
        gpu_id: int | None = None,
        lease_seconds: float = 60,
        wait: float = 0,
        free_gpu_ids: Sequence[int] | None = None,
        free_slots: int | None = None,
    ) -> schemas.Job | None:
        """The next job with a lease, or None; ``wait`` long-polls up to that many seconds.
        ``free_gpu_ids``/``free_slots``: what the worker has free now (see ``ClaimRequest``)."""
        return self.claim_answer(
            worker_id,
            gpu_id=gpu_id,
            lease_seconds=lease_seconds,
            wait=wait,
            free_gpu_ids=free_gpu_ids,
            free_slots=free_slots,
        ).job

    def claim_answer(
        self,
        worker_id: str,
        *,
        gpu_id: int | None = None,
        lease_seconds: float = 60,
        wait: float = 0,
        free_gpu_ids: Sequence[int] | None = None,
        free_slots: int | None = None,
    ) -> schemas.ClaimResponse:
        """``claim``'s whole answer: the job, and whether the worker is asked to drain."""
        req = schemas.ClaimRequest(
            worker_id=worker_id,
            gpu_id=gpu_id,
            lease_seconds=lease_seconds,
            wait=wait,
            free_gpu_ids=None if free_gpu_ids is None else list(free_gpu_ids),
            free_slots=free_slots,
        )
        return self._call(
            "POST", "/jobs/claim", schemas.ClaimResponse, body=req, timeout=self.timeout + wait
        )

    def started(
        self,
        job_id: int,
        worker_id: str,
        attempt: int,
        pid: int,
        files: Literal["shared", "shipped"] | None = None,
        run_dir: str | None = None,
        *,
        timeout: float | None = None,
    ) -> None:
        """The job's process runs (``LeaseLost`` if the worker no longer holds it).
        ``files`` says whether its run files are written in place on the server's
        filesystem (``shared``) or shipped from ``run_dir`` on this machine; ``timeout``
        bounds this request."""
        req = schemas.StartedRequest(
            worker_id=worker_id, attempt=attempt, pid=pid, files=files, run_dir=run_dir
        )
        self._call(
            "POST",
            f"/jobs/{job_id}/started",
            schemas.StartedResponse,
            body=req,
            conflict=LeaseLost,
            timeout=timeout,
        )

    def run_size_warning(
        self,
        job_id: int,
        worker_id: str,
        attempt: int,
        size: int,
        limit: int,
        *,
        timeout: float | None = None,
    ) -> schemas.Run:
        """Record that the job's run directory passed the worker's warning size
        (``LeaseLost`` when the worker no longer runs that attempt). ``timeout`` bounds
        this request."""
        req = schemas.SizeWarningRequest(
            worker_id=worker_id, attempt=attempt, size=size, limit=limit
        )
        return self._call(
            "POST",
            f"/jobs/{job_id}/size_warning",
            schemas.Run,
            body=req,
            conflict=LeaseLost,
            timeout=timeout,
        )

    def heartbeat(
        self,
        job_id: int,
        worker_id: str,
        attempt: int,
        lease_seconds: float = 60,
        *,
        timeout: float | None = None,
    ) -> schemas.HeartbeatResponse:
        """Renew the lease; ``LeaseLost`` when it was lost (kill the job then). ``timeout``
        bounds this request (a worker that must stop its job by then)."""
        req = schemas.HeartbeatRequest(
            worker_id=worker_id, lease_seconds=lease_seconds, attempt=attempt
        )
        return self._call(
            "POST",
            f"/jobs/{job_id}/heartbeat",
            schemas.HeartbeatResponse,
            body=req,
            conflict=LeaseLost,
            timeout=timeout,
        )

    def complete(
        self,
        job_id: int,
        worker_id: str,
        attempt: int,
        exit_code: int,
        *,
        run_id: str | None = None,
        error_message: str | None = None,
        usage: schemas.JobUsage | None = None,
    ) -> schemas.Ack:
        """The job's process exited with ``exit_code`` (``LeaseLost`` for a stale attempt);
        ``usage``: what it used, where the worker accounted it."""
        req = schemas.CompleteRequest(
            worker_id=worker_id,
            exit_code=exit_code,
            run_id=run_id,
            error_message=error_message,
            attempt=attempt,
            usage=usage,
        )
        return self._call(
            "POST", f"/jobs/{job_id}/complete", schemas.Ack, body=req, conflict=LeaseLost
        )

    def fail(
        self,
        job_id: int,
        worker_id: str,
        attempt: int,
        error_message: str,
        exit_code: int | None = None,
        *,
        timed_out: bool = False,
        interrupted: bool = False,
        usage: schemas.JobUsage | None = None,
    ) -> schemas.Ack:
        """The job could not start, or (``timed_out``) was stopped for running too long, or
        (``interrupted``) its worker's operator stopped it (it ends ``cancelled``)."""
        req = schemas.FailRequest(
            worker_id=worker_id,
            error_message=error_message,
            attempt=attempt,
            exit_code=exit_code,
            timed_out=timed_out,
            interrupted=interrupted,
            usage=usage,
        )
        return self._call("POST", f"/jobs/{job_id}/fail", schemas.Ack, body=req, conflict=LeaseLost)

    # -- runs ---------------------------------------------------------------------------
    def runs(
        self,
        status: str | None = None,
        tag: str | None = None,
        limit: int = 100,
        archived: ArchivedFilter = "exclude",
    ) -> list[schemas.Run]:
        """Runs newest first; archived runs left out (``exclude``), alone (``only``) or
        with the rest (``include``)."""
        params: dict[str, Any] = {"status": status, "tag": tag, "limit": limit}
        if archived != "exclude":
            params["archived"] = archived  # an older server knows no such parameter
        return self._call("GET", "/runs", schemas.RunsResponse, params=params).runs

    def runs_page(
        self,
        *,
        text: str = "",
        status: str | None = None,
        tag: str | None = None,
        sort: str = "started_at",
        descending: bool = True,
        offset: int = 0,
        limit: int = 100,
        archived: ArchivedFilter = "exclude",
        counts: bool = False,
    ) -> schemas.RunsResponse:
        """One page of runs filtered, sorted and counted by the server's store: ``runs``,
        ``matched`` (how many match in all) and, with ``counts``, ``statuses``. Needs a
        server that pages ``GET /runs`` (an older one answers without ``matched``:
        ``InvalidRequest``)."""
        params: dict[str, Any] = {
            "q": text or None,
            "status": status,
            "tag": tag,
            "sort": sort,
            "order": "desc" if descending else "asc",
            "offset": offset,
            "limit": limit,
            "archived": archived,
            "counts": "true" if counts else None,
        }
        answer = self._call("GET", "/runs", schemas.RunsResponse, params=params)
        if answer.matched is None:
            raise InvalidRequest("this server cannot page runs (GET /runs has no sort/offset)")
        return answer

    # -- run and job management (exact run ids: a write never goes by prefix) -----------
    def _run_path(self, run_id: str, action: str) -> str:
        return f"/runs/{quote(run_id, safe='')}/{action}"

    def rename_run(self, run_id: str, name: str) -> schemas.Run:
        """Give the run a new name."""
        body = RunRenameRequest(name=name)
        return self._call("POST", self._run_path(run_id, "rename"), schemas.Run, body=body)

    def tag_run(
        self, run_id: str, add: Sequence[str] = (), remove: Sequence[str] = ()
    ) -> schemas.Run:
        """Add and remove the run's tags."""
        body = RunTagsRequest(add=list(add), remove=list(remove))
        return self._call("POST", self._run_path(run_id, "tags"), schemas.Run, body=body)

    def note_run(self, run_id: str, text: str, *, append: bool = False) -> schemas.Run:
        """Set the run's note, or append a paragraph to it."""
        body = RunNoteRequest(text=text, append=append)
        return self._call("POST", self._run_path(run_id, "note"), schemas.Run, body=body)

    def archive_run(self, run_id: str, archived: bool = True) -> schemas.Run:
        """Hide the run from default listings (``archived=False``: show it again)."""
        action = "archive" if archived else "unarchive"
        return self._call("POST", self._run_path(run_id, action), schemas.Run)

    def update_run_config(self, run_id: str, config: dict[str, Any]) -> schemas.Run:
        """Merge config values set after the run started."""
        body = RunConfigRequest(config=config)
        return self._call("POST", self._run_path(run_id, "config"), schemas.Run, body=body)

    def delete_run(self, run_id: str) -> RunDeleteResponse:
        """Delete the run and its files on the server (409 while it runs)."""
        return self._call("POST", self._run_path(run_id, "delete"), RunDeleteResponse)

    def clean(
        self, older_than_seconds: float | None = None, statuses: Sequence[str] | None = None
    ) -> CleanResponse:
        """Drop ended jobs from the queue's views (``whirr clean``); their runs stay."""
        body = CleanRequest(
            older_than_seconds=older_than_seconds,
            statuses=list(statuses) if statuses else None,
        )
        return self._call("POST", "/jobs/clean", CleanResponse, body=body)

    def get_run(self, run_id: str) -> schemas.Run:
        """One run, by id or unique prefix."""
        return self._call("GET", f"/runs/{quote(run_id, safe='')}", schemas.Run)

    def metrics(self, run_id: str, since: int = 0) -> list[dict[str, Any]]:
        """Every logged metrics row with ``_idx >= since``, fetched page by page (a long
        run has millions; one answer holds at most ``METRICS_PAGE``)."""
        rows: list[dict[str, Any]] = []
        while True:
            page = self.metrics_page(run_id, since, METRICS_PAGE)
            rows.extend(page)
            last = page[-1].get("_idx") if page else None
            if len(page) < METRICS_PAGE or not isinstance(last, int) or last < since:
                return rows  # the end, or rows without _idx (which cannot be paged)
            since = last + 1

    def metrics_page(
        self, run_id: str, since: int = 0, limit: int = METRICS_PAGE
    ) -> list[dict[str, Any]]:
        """One page of the run's metrics rows: ``_idx >= since``, at most ``limit``."""
        params = {"since": since, "limit": limit}
        answer = self._call(
            "GET", f"/runs/{run_id}/metrics", schemas.MetricsResponse, params=params
        )
        _warn_skipped(answer.warnings)
        return answer.metrics

    def system_samples(
        self, run_id: str, since: int = 0, limit: int | None = None
    ) -> schemas.SystemResponse:
        """The run's system samples from whole line ``since`` of ``system.jsonl``;
        ``.next`` is the ``since`` that continues after them."""
        params = {"since": since, "limit": limit}
        answer = self._call("GET", f"/runs/{run_id}/system", schemas.SystemResponse, params=params)
        _warn_skipped(answer.warnings)
        return answer

    def tail(self, run_id: str, file: str = "metrics", rows: int = 50) -> list[dict[str, Any]]:
        """The last ``rows`` whole rows of the run's ``metrics`` or ``system`` file."""
        params = {"file": file, "rows": rows}
        answer = self._call("GET", f"/runs/{run_id}/tail", schemas.TailResponse, params=params)
        _warn_skipped(answer.warnings)
        return answer.rows

    def run_file(
        self, run_id: str, file: str = "metrics", offset: int = 0, limit: int | None = None
    ) -> schemas.RunFileChunk:
        """Whole lines of the run's ``metrics`` or ``system`` JSONL from byte ``offset``
        (run id exact), sent as they are on the server's disk."""
        resp = self._send(
            "GET",
            f"/runs/{run_id}/raw/{file}",
            params={"offset": offset, "limit": limit},
            timeout=max(self.timeout, 120.0),
        )
        size = resp.headers.get("X-Whirr-Size", "")
        return schemas.RunFileChunk(
            data=resp.content, offset=offset, size=int(size) if size.isdigit() else 0
        )

    def list_run_files(self, run_id: str) -> list[schemas.ArtifactOut]:
        """Every file of the run's directory, by path relative to it (``output.log``,
        ``artifacts/model.pt``)."""
        return self._call("GET", f"/runs/{run_id}/artifacts", schemas.ArtifactsResponse).artifacts

    # -- shipping run files (no shared filesystem) --------------------------------------
    def run_files(self, run_id: str) -> RunFiles:
        """The run's files on the server: its mode, the current attempt, and per file the
        server's size, the attempt's size (where a shipper resumes) and its state."""
        return self._call("GET", f"/runs/{run_id}/files", RunFiles)

    def upload_run_file(
        self, run_id: str, name: str, attempt: int, offset: int, data: bytes
    ) -> int:
        """Ship ``data`` of run file ``name`` at attempt-local ``offset`` (a whole file:
        offset 0, replacing it); the attempt-local size the server has after. Raises
        ``OffsetGap`` (resume from its ``size``) or ``StaleAttempt`` (a ``LeaseLost``:
        a newer attempt owns the run's files)."""
        answer = self._call(
            "PUT",
            f"/runs/{run_id}/files/{quote(name, safe='')}",
            UploadAnswer,
            raw=data,
            params={"attempt": attempt, "offset": offset},
            timeout=max(self.timeout, 120.0),
        )
        return answer.size

    def final_run_files(self, run_id: str, attempt: int, sizes: dict[str, int]) -> RunFiles:
        """Report the attempt's final local sizes (after its last upload): the server
        then tells ``complete`` from ``missing_tail``. ``StaleAttempt`` as for uploads."""
        return self._call(
            "POST",
            f"/runs/{run_id}/files/final",
            RunFiles,
            body=FinalFilesRequest(files=dict(sizes)),
            params={"attempt": attempt},
        )

    def artifacts(self, run_id: str) -> list[schemas.ArtifactOut]:
        """The files saved under the run's ``artifacts/``, by path relative to it."""
        return [
            msgspec.structs.replace(a, path=a.path.removeprefix(_ARTIFACTS))
            for a in self.list_run_files(run_id)
            if a.path.startswith(_ARTIFACTS)
        ]

    def read_artifact(self, run_id: str, path: str) -> bytes:
        """One saved artifact's bytes (``path`` relative to the run's ``artifacts/``)."""
        return self._send("GET", f"/runs/{run_id}/artifacts/{quote(_ARTIFACTS + path)}").content

    def download_artifact(
        self,
        run_id: str,
        path: str,
        dest: str | os.PathLike[str],
        sha256: str | None = None,
    ) -> Path:
        """Stream one saved artifact (``path`` relative to the run's ``artifacts/``) into
        ``dest`` (a file, or a directory to put it in), through a hidden temporary file
        renamed into place; with ``sha256``, what arrived must have it (``ServerError``
        otherwise, and ``dest`` is left as it was)."""
        target = Path(dest)
        if target.is_dir():
            target = target / Path(path).name
        self.fetch_artifact(run_id, path, target, sha256)
        return target

    def fetch_artifact(
        self, run_id: str, path: str, target: Path, sha256: str | None = None
    ) -> DownloadedArtifact:
        """``download_artifact`` into exactly ``target``, saying what was saved."""
        try:
            url = f"/runs/{run_id}/artifacts/{quote(_ARTIFACTS + path)}"
            with self._http.stream("GET", url, timeout=max(self.timeout, 120.0)) as resp:
                if resp.status_code >= 400:
                    resp.read()
                    raise _error(resp, InvalidState)
                chunks = resp.iter_bytes(_DOWNLOAD_CHUNK)
                try:
                    size, digest = save_stream(target, chunks, sha256)
                except ChecksumMismatch as exc:
                    raise ServerError(f"artifact {path!r} of run {run_id}: {exc}") from None
        except httpx.TransportError as exc:
            raise ServerUnreachable(f"download from {self.url} failed: {exc}") from exc
        return DownloadedArtifact(
            dest=str(target), size=size, sha256=digest, verified=sha256 is not None
        )

    # -- uploading artifacts (no shared filesystem; whirr.shipping.artifacts) ------------
    def artifact_upload_size(self, run_id: str, path: str, attempt: int) -> ArtifactUploadSize:
        """How many bytes of artifact ``path`` the attempt's upload has on the server
        (resume from there) and the largest artifact it takes."""
        return self._call(
            "GET",
            f"/runs/{run_id}/uploads/{quote(path)}",
            ArtifactUploadSize,
            params={"attempt": attempt},
            conflict=LeaseLost,
        )

    def upload_artifact(
        self,
        run_id: str,
        path: str,
        attempt: int,
        offset: int,
        data: bytes | Iterable[bytes],
        length: int,
    ) -> int:
        """Send ``length`` bytes of artifact ``path`` from ``offset`` (``data``: bytes,
        or chunks streamed as they are produced); the server's size after. Raises
        ``OffsetGap`` (resume from its ``size``), ``StaleAttempt`` (a newer attempt owns
        the run), ``InvalidRequest`` (413: too large for the server)."""
        headers = {"Content-Type": "application/octet-stream", "Content-Length": str(length)}
        try:
            resp = self._http.request(
                "PUT",
                f"/runs/{run_id}/artifacts/{quote(path)}",
                content=data,
                headers=headers,
                params={"attempt": attempt, "offset": offset},
                timeout=max(self.timeout, 120.0),
            )
        except httpx.TransportError as exc:
            raise ServerUnreachable(f"upload to {self.url} failed: {exc}") from exc
        if resp.status_code >= 400:
            raise _error(resp, LeaseLost)
        return msgspec.json.decode(resp.content, type=ArtifactUploadSize).size

    def complete_artifact(
        self, run_id: str, path: str, attempt: int, size: int, sha256: str
    ) -> StoredArtifact:
        """Finish an upload: the server checks ``size`` and ``sha256`` (``InvalidRequest``
        when either differs: the upload is discarded), stores and records it."""
        return self._call(
            "POST",
            f"/runs/{run_id}/artifacts/{quote(path)}/complete",
            StoredArtifact,
            body=CompleteArtifactRequest(size=size, sha256=sha256),
            params={"attempt": attempt},
            timeout=max(self.timeout, 600.0),  # checking and storing read the whole file
            conflict=LeaseLost,
        )

    # -- what a tracked script records (whirr.init() under a remote worker) --------------
    def attach_run(
        self,
        run_id: str,
        *,
        name: str | None = None,
        config: dict[str, Any] | None = None,
        tags: Sequence[str] = (),
        hostname: str = "",
        pid: int | None = None,
        git: dict[str, Any] | None = None,
    ) -> schemas.Run:
        """Record that a script attached to its job's run (``NotFound`` while the worker
        has not reported the start yet; ``InvalidState`` once the run ended)."""
        req = RunAttachRequest(
            name=name, config=config or {}, tags=list(tags), hostname=hostname, pid=pid, git=git
        )
        return self._call("POST", f"/runs/{run_id}/attach", schemas.Run, body=req)

    def start_run(self, req: RunStartRequest) -> schemas.Run:
        """Record a direct run's start on the server (``InvalidState`` when the id is
        taken; with ``req.resume``, ``NotFound`` when the server does not know it)."""
        return self._call("POST", "/runs", schemas.Run, body=req)

    def finish_run(
        self, run_id: str, status: str, error: str | None = None, *, exit_code: int | None = None
    ) -> schemas.Run:
        """Record how a direct run ended (``InvalidState`` for a job's run)."""
        fields = {"status": status, "error": error, "exit_code": exit_code}
        req = msgspec.convert(fields, RunFinishRequest)
        return self._call("POST", f"/runs/{run_id}/finish", schemas.Run, body=req)

    def update_summary(self, run_id: str, summary: dict[str, Any]) -> None:
        """Merge ``summary`` into the run's summary."""
        self._call(
            "POST", f"/runs/{run_id}/summary", schemas.Ack, body=RunSummaryRequest(summary=summary)
        )

    def record_artifact(self, run_id: str, path: str, size: int) -> None:
        """Record an artifact already under the run's ``artifacts/`` on the data dir
        (``NotFound`` when the server does not see it there)."""
        self._call(
            "POST",
            f"/runs/{run_id}/artifacts",
            schemas.Ack,
            body=RunArtifactRequest(path=path, size=size),
        )

    # -- the event stream ---------------------------------------------------------------
    def events(
        self,
        after: int = 0,
        *,
        follow: bool = True,
        types: Sequence[str] | None = None,
        deadline: float | None = None,
        stream: str | None = None,
        last: int | None = None,
    ) -> Iterator[schemas.EventOut]:
        """Events after position ``after`` (server-sent events), optionally only some types
        and one ``stream``; with ``last``, the last that many such events instead of those
        after ``after``. With ``follow`` it goes on until the caller stops or ``deadline``
        (monotonic) passes."""
        params = {
            "after": after,
            "follow": "true" if follow else "false",
            "types": ",".join(types) if types else None,
            "stream": stream,
            "last": last,
        }
        timeout = httpx.Timeout(self.timeout, read=60)
        if deadline is not None:
            left = deadline - time.monotonic()
            if left <= 0:
                return
            timeout = httpx.Timeout(min(self.timeout, left), read=min(60.0, left))
        try:
            query = _clean(params)
            with self._http.stream("GET", "/events", params=query, timeout=timeout) as resp:
                if resp.status_code >= 400:
                    resp.read()
                    raise _error(resp, InvalidState)
                # A quiet stream still sends a keepalive every 15 s and each line re-arms
                # the read timeout, so only cutting the connection bounds the whole call.
                with _cut_at(resp, deadline):
                    data: list[str] = []
                    for line in resp.iter_lines():
                        if deadline is not None and time.monotonic() >= deadline:
                            return
                        if line.startswith("data:"):
                            data.append(line[5:].strip())
                        elif not line and data:
                            yield _decode_event("\n".join(data))
                            data = []
        except httpx.TransportError as exc:
            if deadline is not None and time.monotonic() >= deadline:
                return  # cut (or timed out) at the deadline: the stream is over
            raise ServerUnreachable(f"lost the event stream from {self.url}: {exc}") from exc


@contextmanager
def _cut_at(resp: httpx.Response, deadline: float | None) -> Iterator[None]:
    """Shut ``resp``'s socket down at ``deadline`` (monotonic) unless the block ended
    first: a read blocked on it then fails at once instead of waiting for the next line."""
    stream = resp.extensions.get("network_stream")
    sock = None if stream is None else stream.get_extra_info("socket")
    if deadline is None or sock is None:
        yield
        return
    lock = threading.Lock()
    ended = False

    def cut() -> None:
        with lock:
            if not ended:
                with suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)

    timer = threading.Timer(max(0.0, deadline - time.monotonic()), cut)
    timer.daemon = True
    timer.start()
    try:
        yield
    finally:
        with lock:
            ended = True
        timer.cancel()


def _verify(url: str) -> ssl.SSLContext | bool:
    """TLS verification for a client of ``url``: the system's CA bundle for ``https``;
    for plain ``http``, a context that trusts nothing. No request of such a client uses
    TLS (it never follows redirects), and loading the bundle costs ~0.1 s of every
    command's start-up (measured: ``httpx.Client()`` 115 ms, with this context 1 ms)."""
    return ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT) if url.startswith("http://") else True


def _clean(params: dict[str, Any] | None) -> dict[str, Any] | None:
    return None if params is None else {k: v for k, v in params.items() if v is not None}


def _error(resp: httpx.Response, conflict: type[WhirrError]) -> WhirrError:
    """The ``WhirrError`` for an error answer, carrying the server's ``detail``."""
    try:
        detail = _decode_error(resp.content).detail
    except msgspec.DecodeError:
        detail = resp.text[:500] or resp.reason_phrase
    message = detail if isinstance(detail, str) else msgspec.json.encode(detail).decode()
    status = resp.status_code
    if status == 409:
        shipping = _shipping_conflict(resp.content, message)
        if shipping is not None:
            return shipping
    kinds: dict[int, type[WhirrError]] = {
        400: InvalidRequest,
        401: AuthError,
        403: AuthError,
        404: NotFound,
        409: conflict,
        413: InvalidRequest,
        422: InvalidRequest,
        426: UpgradeRequired,
    }
    kind = kinds.get(status, ServerError if status >= 500 else InvalidRequest)
    if kind is AuthError:
        message = f"{message} (HTTP {status}; set WHIRR_TOKEN to the server's token)"
    spoken = resp.headers.get(protocol.HEADER, "1")
    unknown_route = status == 404 and message.startswith("Requested URL")
    if (status == 422 or unknown_route) and spoken.isdigit() and int(spoken) < protocol.CURRENT:
        # An older server refusing a field or route it does not know: say so.
        message = (
            f"{message} (the server speaks whirr protocol {spoken}, this client "
            f"{protocol.CURRENT}: upgrade the whirr server)"
        )
    return kind(message)


def _shipping_conflict(content: bytes, message: str) -> WhirrError | None:
    """The shipping routes' 409s, told apart by ``reason``: ``StaleAttempt`` (with the
    job's current attempt) and ``OffsetGap`` (with the size the server has)."""
    try:
        fields = msgspec.json.decode(content, type=dict[str, Any])
    except msgspec.DecodeError:
        return None
    reason = fields.get("reason")
    number = fields.get("attempt" if reason == StaleAttempt.reason else "size")
    if not isinstance(number, int):
        return None
    if reason == StaleAttempt.reason:
        return StaleAttempt(message, number)
    if reason == OffsetGap.reason:
        return OffsetGap(message, number)
    return None


def _warn_skipped(messages: list[str] | None) -> None:
    """The server's word on damaged lines it left out, as the local readers say it."""
    for message in messages or ():
        warnings.warn(SkippedLine(message), stacklevel=3)
