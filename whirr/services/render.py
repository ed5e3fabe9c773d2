"""Views (what the store projects) turned into wire bodies: the one shape of each entity
that the API serves and every ``--json`` prints, local or remote."""

from __future__ import annotations

from datetime import datetime

from whirr.projections import JobView, RunView, WorkerView
from whirr.projections.jobs import Queued, Running
from whirr.wire import schemas


def job_out(job: JobView) -> schemas.Job:
    """The API shape of a job."""
    return schemas.Job(
        id=job.id,
        name=job.name,
        command_argv=job.command_argv,
        workdir=job.workdir,
        config=job.config,
        tags=job.tags,
        status=job.status,
        attempt=job.attempt,
        worker_id=job.worker_id,
        created_at=job.created_at,
        started_at=job.started_at,
        finished_at=job.finished_at,
        exit_code=job.exit_code,
        run_id=job.run_id,
        lease_expires_at=job.lease_expires_at,
        env=job.env,
        timeout_seconds=job.timeout_seconds,
        memory_bytes=job.memory_bytes,
        cpus=job.cpus,
        parent_job_id=job.parent_job_id,
        priority=job.priority,
        max_attempts=job.max_attempts,
        cancel_requested=job.cancel_requested,
        error=job.error,
        first_attempt=job.first_attempt,
        gpu_ids=job.state.gpu_ids if isinstance(job.state, Running) else [],
        gpus=job.gpus,
        after=job.after,
        retries=job.retries,
        after_any=job.after_any,
        waiting_on=job.waiting_on,
        failed_attempts=job.failed_attempts,
        not_before=job.state.not_before if isinstance(job.state, Queued) else None,
        snapshot=job.snapshot,
        usage=job.usage,
    )


def run_out(run: RunView) -> schemas.Run:
    """The API shape of a run."""
    return schemas.Run(
        id=run.id,
        job_id=run.job_id,
        name=run.name,
        config=run.config,
        tags=run.tags,
        status=run.status,
        started_at=run.started_at,
        finished_at=run.finished_at,
        duration_seconds=run.duration_seconds,
        summary=run.summary,
        hostname=run.hostname,
        run_dir=run.run_dir,
        exit_code=run.exit_code,
        error=run.error,
        git=run.git,
        artifacts=[
            schemas.SavedArtifact(
                path=a.path,
                size=a.size,
                saved_at=a.saved_at,
                sha256=a.sha256,
                stored_in=None if a.location is None else a.location.split(":", 1)[0],
            )
            for a in run.artifacts
        ],
        pid=run.pid,
        files_mode=run.files_mode,
        worker_run_dir=run.worker_run_dir,
        notes=run.notes,
        archived=run.archived,
        size_warning=None
        if run.size_warning is None
        else schemas.SizeWarning(
            size=run.size_warning.size, limit=run.size_warning.limit, at=run.size_warning.at
        ),
    )


def worker_out(worker: WorkerView, now: datetime, timeout: float) -> schemas.WorkerOut:
    """The API shape of a worker; ``offline`` when not heard from within ``timeout``."""
    online = worker.is_online(now, timeout)
    status = worker.status if online or worker.stopped else "offline"
    return schemas.WorkerOut(
        id=worker.id,
        hostname=worker.hostname,
        gpu_id=worker.gpu_ids[0] if worker.gpu_ids else None,
        status=status,
        current_job_id=worker.current_job_ids[0] if worker.current_job_ids else None,
        heartbeat_at=worker.heartbeat_at,
        gpu_ids=worker.gpu_ids,
        current_job_ids=worker.current_job_ids,
        online=online,
        registered_at=worker.registered_at,
        pid=worker.pid,
        slots=worker.slots,
        draining=worker.draining,
    )
