"""``whirr submit``, ``status``, ``cancel`` and ``retry``."""

from __future__ import annotations

import os
from typing import Any

import click

from whirr.cli import remote
from whirr.cli.common import (
    ago,
    duration,
    emit_json,
    local_time,
    print_table,
    project_store,
    user_errors,
)
from whirr.cli.remote import server_option
from whirr.cli.scheduling import (
    live_workers,
    parse_duration,
    parse_ids,
    scheduling_options,
    waiting_note,
)
from whirr.projections.jobs import Queued, Running

STATUSES = ["queued", "running", "completed", "failed", "cancelled", "timed_out", "active"]


def job_json(job: Any) -> dict[str, Any]:
    """The Job shape of the HTTP API (SPEC), shared by ``--json`` output."""
    return {
        "id": job.id,
        "name": job.name,
        "command_argv": job.command_argv,
        "workdir": job.workdir,
        "config": job.config,
        "tags": job.tags,
        "status": job.status,
        "attempt": job.attempt,
        "max_attempts": job.max_attempts,
        "priority": job.priority,
        "worker_id": job.worker_id,
        "created_at": job.created_at,
        "started_at": job.started_at,
        "finished_at": job.finished_at,
        "exit_code": job.exit_code,
        "error": job.error,
        "run_id": job.run_id,
        "parent_job_id": job.parent_job_id,
        "cancel_requested": job.cancel_requested,
        "lease_expires_at": job.lease_expires_at,
        "gpus": job.gpus,
        "gpu_ids": job.state.gpu_ids if isinstance(job.state, Running) else [],
        "after": job.after,
        "after_any": job.after_any,
        "waiting_on": job.waiting_on,
        "retries": job.retries,
        "failed_attempts": job.failed_attempts,
        "not_before": job.state.not_before if isinstance(job.state, Queued) else None,
        "timeout_seconds": job.timeout_seconds,
        "snapshot": job.snapshot,
    }


@click.command(
    "submit",
    context_settings={"ignore_unknown_options": True, "allow_interspersed_args": False},
)
@click.option("-n", "--name", help="A name for the job (and its run).")
@click.option("-t", "--tags", default="", help="Comma-separated tags, e.g. sweep,lr.")
@click.option(
    "--max-attempts",
    type=click.IntRange(1, 100),
    default=None,
    help="Attempts allowed when a worker is lost (default: config max_attempts).",
)
@scheduling_options
@click.option("--json", "as_json", is_flag=True, help="Print the queued job as JSON.")
@server_option()
@click.argument("command", nargs=-1, type=click.UNPROCESSED, required=True)
@user_errors
def submit_cmd(
    name: str | None,
    tags: str,
    max_attempts: int | None,
    gpus: int | None,
    priority: int,
    after: str,
    after_any: bool,
    retries: int,
    timeout: str | None,
    snapshot: bool | None,
    as_json: bool,
    server: str | None,
    command: tuple[str, ...],
) -> None:
    """Queue COMMAND to run on a worker, from the current directory.

    \b
    Examples:
      whirr submit -- python train.py --lr 0.01
      whirr submit -n baseline -t sweep,lr python train.py --lr 0.001
      whirr submit --gpus 2 -p 10 --retries 2 --timeout 6h -- python big.py
      whirr submit --after 41,42 -- python evaluate.py   # once 41 and 42 completed
      whirr submit --gpus 0 -- python preprocess.py      # CPU-only

    Everything after the options (or after `--`) is the command, passed as-is.
    See docs/scheduling.md for GPUs, priorities, dependencies, retries and timeouts.
    """
    deps = parse_ids(after)
    if after_any and not deps:
        raise click.UsageError("--after-any needs --after ID[,ID...]")
    timeout_s = parse_duration(timeout) if timeout else None
    if server:
        used = [
            flag
            for flag, on in [
                ("--gpus", gpus is not None),
                ("--priority", priority != 0),
                ("--after", bool(deps)),
                ("--retries", retries > 0),
                ("--timeout", timeout_s is not None),
                ("--snapshot", bool(snapshot)),
            ]
            if on
        ]
        if used:
            raise click.UsageError(f"{', '.join(used)}: not available with --server yet")
        return remote.submit(
            server,
            command,
            name=name,
            tags=tags.split(","),
            max_attempts=max_attempts,
            as_json=as_json,
        )
    from whirr.services import Jobs

    with project_store() as (project, store):
        config = project.config
        workdir, digest = os.getcwd(), None
        if snapshot if snapshot is not None else config.snapshot:
            from whirr.snapshot import take_snapshot

            workdir, digest = take_snapshot(workdir, project.dir / "snapshots")
        job = Jobs(store).submit(
            list(command),
            workdir,
            name=name,
            tags=[t.strip() for t in tags.split(",")],
            max_attempts=max_attempts or config.max_attempts,
            gpus=gpus,
            priority=priority,
            after=deps,
            after_any=after_any,
            retries=retries,
            retry_delay=config.retry_delay,
            timeout_seconds=timeout_s,
            snapshot=digest,
        )
    if as_json:
        emit_json(job_json(job))
    else:
        click.echo(f"Submitted job #{job.id}")


@click.command("status")
@click.argument("job_id", type=int, required=False)
@click.option("-a", "--all", "show_all", is_flag=True, help="Include finished jobs.")
@click.option(
    "-s",
    "--status",
    "status",
    type=click.Choice(STATUSES),
    help="Only jobs with this status (`active` = queued + running).",
)
@click.option(
    "-n",
    "--limit",
    type=click.IntRange(min=1),
    default=50,
    show_default=True,
    help="At most this many jobs (newest first) with --all/--status.",
)
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@server_option(short=False)
@user_errors
def status_cmd(
    job_id: int | None,
    show_all: bool,
    status: str | None,
    limit: int,
    as_json: bool,
    server: str | None,
) -> None:
    """Show active jobs, or finished ones too, or one job in detail.

    \b
    Examples:
      whirr status              # queued and running jobs
      whirr status --all -n 20  # the 20 newest jobs, any status
      whirr status -s failed
      whirr status 42           # everything about job 42
    """
    if server:
        return remote.status(
            server, job_id, show_all=show_all, status=status, limit=limit, as_json=as_json
        )
    from whirr.services import Jobs

    with project_store() as (project, store):
        if job_id is not None:
            job = Jobs(store).get(job_id)
            live = live_workers(store, project.config.heartbeat_timeout, _now())
            note = waiting_note(job, _now(), live)
            if as_json:
                emit_json({**job_json(job), "waiting": note or None})
            else:
                _print_job(job, note)
            return
        if status == "active" or (status is None and not show_all):
            jobs = store.jobs(["queued", "running"])
        else:
            jobs = store.jobs([status] if status else None, limit=limit)
        counts = store.job_counts()
        now = _now()
        live = live_workers(store, project.config.heartbeat_timeout, now)
    notes = {j.id: waiting_note(j, now, live) for j in jobs}
    if as_json:
        emit_json({"jobs": [{**job_json(j), "waiting": notes[j.id] or None} for j in jobs]})
        return
    if not jobs:
        queued_hint = "" if show_all or status else " (use --all to include finished jobs)"
        click.echo(f"No jobs{' with status ' + status if status else ''}{queued_hint}.")
    else:
        rows = []
        for j in sorted(jobs, key=lambda j: j.id):
            if j.status == "running" and j.started_at is not None:
                when = duration((_now() - j.started_at).total_seconds())
            elif j.finished_at is not None:
                when = ago(j.finished_at)
            else:
                when = ago(j.created_at)
            status_word = j.status + (
                " (cancelling)" if j.cancel_requested and j.status == "running" else ""
            )
            if notes[j.id]:
                status_word += f" ({notes[j.id]})"
            rows.append(
                [
                    str(j.id),
                    j.name or "-",
                    status_word,
                    str(j.attempt),
                    j.worker_id or "-",
                    when,
                    _short(" ".join(j.command_argv)),
                ]
            )
        print_table(["ID", "NAME", "STATUS", "TRY", "WORKER", "TIME", "COMMAND"], rows)
    summary = ", ".join(f"{counts.get(s, 0)} {s}" for s in STATUSES[:-1] if counts.get(s))
    click.echo(f"\n{summary or 'queue empty'}")


def _print_job(job: Any, note: str = "") -> None:
    fields = [
        ("Job", f"#{job.id}" + (f" ({job.name})" if job.name else "")),
        (
            "Status",
            job.status
            + (" (cancel requested)" if job.cancel_requested and job.status == "running" else ""),
        ),
        ("Command", " ".join(job.command_argv)),
        ("Workdir", job.workdir),
        ("Attempt", f"{job.attempt} (max {_last_attempt(job)})"),
        ("Worker", job.worker_id or "-"),
        ("Run", job.run_id),
        ("Tags", ", ".join(job.tags) or "-"),
        ("Created", local_time(job.created_at)),
        ("Started", local_time(job.started_at)),
        ("Finished", local_time(job.finished_at)),
    ]
    if job.started_at and job.finished_at:
        fields.append(("Duration", duration((job.finished_at - job.started_at).total_seconds())))
    if job.exit_code is not None:
        fields.append(("Exit code", str(job.exit_code)))
    if job.error:
        fields.append(("Error", job.error))
    if job.parent_job_id:
        fields.append(("Retry of", f"#{job.parent_job_id}"))
    fields += _scheduling_fields(job, note)
    for label, value in fields:
        click.echo(f"{label + ':':<11}{value}")


@click.command("cancel")
@click.argument("job_id", type=int, required=False)
@click.option("--all-queued", is_flag=True, help="Cancel every queued job.")
@server_option()
@user_errors
def cancel_cmd(job_id: int | None, all_queued: bool, server: str | None) -> None:
    """Cancel a job: a queued one at once, a running one by stopping its process group.

    \b
    Examples:
      whirr cancel 42
      whirr cancel --all-queued
    """
    from whirr.services import Jobs

    if (job_id is None) == (not all_queued):
        raise click.UsageError("give a JOB_ID or --all-queued (not both)")
    if server:
        return remote.cancel(server, job_id, all_queued)
    with project_store() as (_, store):
        jobs = Jobs(store)
        if all_queued:
            ids = jobs.cancel_all_queued()
            click.echo(
                f"Cancelled {len(ids)} queued job(s)"
                + (f": {', '.join(f'#{i}' for i in ids)}" if ids else "")
            )
            return
        assert job_id is not None
        previous, job = jobs.cancel(job_id)
    if previous == "queued":
        click.echo(f"Cancelled job #{job_id} (was queued)")
    else:
        click.echo(
            f"Cancel requested for job #{job_id} (running on {job.worker_id}); "
            "its worker is stopping it"
        )


@click.command("retry")
@click.argument("job_id", type=int)
@server_option()
@user_errors
def retry_cmd(job_id: int, server: str | None) -> None:
    """Queue a new job with the command of failed, cancelled or timed-out JOB_ID."""
    if server:
        return remote.retry(server, job_id)
    from whirr.services import Jobs

    with project_store() as (_, store):
        job = Jobs(store).retry(job_id)
    click.echo(f"Submitted job #{job.id} (retry of #{job_id}, attempt {job.attempt})")


def _last_attempt(job: Any) -> int:
    """The highest attempt number worker loss can reach (retried failures extend it)."""
    extra = getattr(job, "failed_attempts", 0)
    return int(getattr(job, "first_attempt", 1) + job.max_attempts - 1 + extra)


def _scheduling_fields(job: Any, note: str) -> list[tuple[str, str]]:
    """The scheduling lines of ``whirr status ID`` (only those that say something)."""
    fields = []
    if note:
        fields.append(("Waiting", note))
    if getattr(job, "priority", 0):
        fields.append(("Priority", str(job.priority)))
    gpu_ids = job.state.gpu_ids if isinstance(getattr(job, "state", None), Running) else []
    if gpu_ids or getattr(job, "gpus", None) is not None:
        wanted = "default" if job.gpus is None else str(job.gpus)
        held = f", holds {','.join(map(str, gpu_ids))}" if gpu_ids else ""
        fields.append(("GPUs", f"{wanted}{held}"))
    if getattr(job, "after", None):
        kind = "ended" if job.after_any else "completed"
        fields.append(("After", f"{', '.join(f'#{d}' for d in job.after)} ({kind})"))
    if getattr(job, "retries", 0):
        fields.append(("Retries", f"{job.failed_attempts} of {job.retries} used"))
    if getattr(job, "timeout_seconds", None):
        fields.append(("Timeout", duration(job.timeout_seconds)))
    if getattr(job, "snapshot", None):
        fields.append(("Snapshot", job.snapshot[:12]))
    return fields


def _short(text: str, width: int = 60) -> str:
    return text if len(text) <= width else text[: width - 1] + "…"


def _now() -> Any:
    from whirr.clock import utc_now

    return utc_now()
