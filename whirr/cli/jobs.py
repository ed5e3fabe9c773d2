"""``whirr submit``, ``status``, ``cancel`` and ``retry``."""

from __future__ import annotations

import os
from datetime import datetime

import click

from whirr.cli.common import (
    JOB_REF,
    StatusChoice,
    ago,
    count,
    duration,
    emit_json,
    print_table,
    server_option,
    user_errors,
)
from whirr.cli.scheduling import parse_duration, parse_ids, parse_size, scheduling_options
from whirr.cli.usage import size_warning_line, usage_line
from whirr.clock import local_time
from whirr.facade import Whirr, open_whirr
from whirr.services.errors import NotFound
from whirr.wire import schemas
from whirr.wire.leases import status_note

STATUSES = ["queued", "running", "completed", "failed", "cancelled", "timed_out", "active"]


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
    memory: str | None,
    cpus: float | None,
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
      whirr submit --memory 16G --cpus 4 -- python etl.py

    Everything after the options (or after `--`) is the command, passed as-is.
    See docs/scheduling.md for GPUs, priorities, dependencies, retries and timeouts.
    """
    deps = parse_ids(after, "--after")
    if after_any and not deps:
        raise click.UsageError("--after-any needs --after ID[,ID...]")
    spec = schemas.SubmitRequest(
        command_argv=list(command),
        workdir=os.getcwd(),
        name=name,
        tags=[t.strip() for t in tags.split(",") if t.strip()],
        max_attempts=max_attempts,
        gpus=gpus,
        priority=priority,
        after=deps,
        after_any=after_any,
        retries=retries,
        timeout_seconds=parse_duration(timeout, "--timeout") if timeout is not None else None,
        memory_bytes=parse_size(memory, "--memory") if memory is not None else None,
        cpus=cpus,
        snapshot=snapshot,
    )
    with open_whirr(server) as whirr:
        job = whirr.submit(spec)
    if as_json:
        emit_json(job)
    else:
        click.echo(f"Submitted job #{job.id}")


@click.command("status")
@click.argument("job_id", type=JOB_REF, required=False)
@click.option("-a", "--all", "show_all", is_flag=True, help="Include finished jobs.")
@click.option(
    "-s",
    "--status",
    "status",
    type=StatusChoice(STATUSES),
    help="Only jobs with this status (`active` = queued + running).",
)
@click.option(
    "-n",
    "--limit",
    type=count(),
    default=50,
    show_default=True,
    help="At most this many jobs (running ones first, then the newest).",
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
    with open_whirr(server) as whirr:
        if job_id is not None:
            job = whirr.job(job_id)
            if as_json:
                emit_json(job)
            else:
                _print_job(job, _dependency_statuses(whirr, job), _size_warning(whirr, job))
            return
        # Bounded by what is printed: the store reads at most ``limit`` jobs (a LIMIT in
        # its query), and the footer's counts come from its counts view.
        if status == "active" or (status is None and not show_all):
            wanted: list[str] | None = ["queued", "running"]
            jobs = whirr.jobs(["running"], limit)
            if len(jobs) < limit:
                jobs += whirr.jobs(["queued"], limit - len(jobs))
        else:
            wanted = [status] if status else None
            jobs = whirr.jobs(wanted, limit)
        counts = whirr.status()
    if as_json:
        emit_json({"jobs": jobs})
        return
    if not jobs:
        queued_hint = "" if show_all or status else " (use --all to include finished jobs)"
        click.echo(f"No jobs{' with status ' + status if status else ''}{queued_hint}.")
    else:
        now = _now()
        # Why jobs ended, when any did: the exit code and the error, so finding out why
        # a batch failed is one command, not one `whirr logs` per job.
        ended = any(j.exit_code is not None or j.error for j in jobs)
        rows = []
        for j in sorted(jobs, key=lambda j: j.id):
            if j.status == "running" and j.started_at is not None:
                when = duration((now - j.started_at).total_seconds())
            else:
                when = ago(j.finished_at or j.created_at, now)
            status_word = j.status + (
                " (cancelling)" if j.cancel_requested and j.status == "running" else ""
            )
            status_word += status_note(j.status, j.lease_expires_at, now)
            if j.waiting:
                status_word += f" ({j.waiting})"
            why = (
                [str(j.exit_code) if j.exit_code is not None else "-", _short(j.error or "-", 40)]
                if ended
                else []
            )
            rows.append(
                [
                    str(j.id),
                    j.name or "-",
                    status_word,
                    str(j.attempt),
                    j.worker_id or "-",
                    when,
                    *why,
                    _short(" ".join(j.command_argv)),
                ]
            )
        why_headers = ["EXIT", "ERROR"] if ended else []
        print_table(
            ["ID", "NAME", "STATUS", "TRY", "WORKER", "TIME", *why_headers, "COMMAND"], rows
        )
    words = [(n, getattr(counts, n)) for n in STATUSES[:-1]]
    matching = sum(n for word, n in words if wanted is None or word in wanted)
    if jobs and matching > len(jobs):
        click.echo(f"({matching - len(jobs)} more not shown; -n/--limit shows more)")
    summary = ", ".join(f"{count} {word}" for word, count in words if count)
    click.echo(f"\n{summary or 'queue empty'}")


def _dependency_statuses(whirr: Whirr, job: schemas.Job) -> dict[int, str]:
    """The status of each job ``job`` runs after (``unknown`` for one not found)."""
    statuses = {}
    for dep in job.after:
        try:
            statuses[dep] = whirr.job(dep).status
        except NotFound:
            statuses[dep] = "unknown"
    return statuses


def _size_warning(whirr: Whirr, job: schemas.Job) -> schemas.SizeWarning | None:
    """The job's run's size warning, if its run exists and has one."""
    if job.started_at is None:
        return None
    try:
        return whirr.run(job.run_id).size_warning
    except NotFound:
        return None


def _print_job(
    job: schemas.Job, dep_statuses: dict[int, str], size: schemas.SizeWarning | None = None
) -> None:
    fields = [
        ("Job", f"#{job.id}" + (f" ({job.name})" if job.name else "")),
        (
            "Status",
            job.status
            + (" (cancel requested)" if job.cancel_requested and job.status == "running" else "")
            + status_note(job.status, job.lease_expires_at, _now()),
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
    if job.usage is not None:
        fields.append(("Used", usage_line(job.usage)))
    if job.error:
        fields.append(("Error", job.error))
    if size is not None:
        fields.append(("Warning", size_warning_line(size)))
    if job.parent_job_id:
        fields.append(("Retry of", f"#{job.parent_job_id}"))
    fields += _scheduling_fields(job, dep_statuses)
    for label, value in fields:
        click.echo(f"{label + ':':<11}{value}")


@click.command("cancel")
@click.argument("job_id", type=JOB_REF, required=False)
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
    if (job_id is None) == (not all_queued):
        raise click.UsageError("give a JOB_ID or --all-queued (not both)")
    with open_whirr(server) as whirr:
        if all_queued:
            done = whirr.cancel_all_queued()
            ids = ", ".join(f"#{i}" for i in done.cancelled)
            click.echo(f"Cancelled {done.count} queued job(s)" + (f": {ids}" if ids else ""))
            return
        assert job_id is not None
        answer = whirr.cancel(job_id)
        job = whirr.job(job_id)
    if answer.status == "cancelled":  # ended at once: it was queued, or its worker lost
        click.echo(f"Cancelled job #{job_id} (was {answer.previous_status})")
    else:
        click.echo(
            f"Cancel requested for job #{job_id} (running on {job.worker_id}); "
            "its worker is stopping it"
        )


@click.command("retry")
@click.argument("job_id", type=JOB_REF)
@server_option()
@user_errors
def retry_cmd(job_id: int, server: str | None) -> None:
    """Queue a new job with the command of failed, cancelled or timed-out JOB_ID."""
    with open_whirr(server) as whirr:
        job = whirr.retry(job_id)
    click.echo(f"Submitted job #{job.id} (retry of #{job_id}, attempt {job.attempt})")


def _last_attempt(job: schemas.Job) -> int:
    """The highest attempt number worker loss can reach (retried failures extend it)."""
    return job.first_attempt + job.max_attempts - 1 + job.failed_attempts


def _scheduling_fields(job: schemas.Job, dep_statuses: dict[int, str]) -> list[tuple[str, str]]:
    """The scheduling lines of ``whirr status ID`` (only those that say something)."""
    fields = []
    if job.waiting:
        fields.append(("Waiting", job.waiting))
    if job.priority:
        fields.append(("Priority", str(job.priority)))
    gpu_ids = job.gpu_ids
    if gpu_ids or job.gpus is not None:
        wanted = "default" if job.gpus is None else str(job.gpus)
        held = f", holds {','.join(map(str, gpu_ids))}" if gpu_ids else ""
        fields.append(("GPUs", f"{wanted}{held}"))
    if job.after:
        # The condition and each dependency's own status: "(completed)" alone read as
        # the dependency's status even when it had timed out.
        condition = "once each has ended" if job.after_any else "once each has completed"
        deps = ", ".join(f"#{d} ({dep_statuses.get(d, 'unknown')})" for d in job.after)
        fields.append(("After", f"{deps}: runs {condition}"))
    if job.retries:
        fields.append(("Retries", f"{job.failed_attempts} of {job.retries} used"))
    if job.timeout_seconds:
        fields.append(("Timeout", duration(job.timeout_seconds)))
    limits = []
    if job.memory_bytes:
        limits.append(f"memory {job.memory_bytes / 2**30:.3g}G")
    if job.cpus:
        limits.append(f"{job.cpus:g} CPUs")
    if limits:
        fields.append(("Limits", ", ".join(limits)))
    if job.snapshot:
        fields.append(("Snapshot", job.snapshot[:12]))
    return fields


def _short(text: str, width: int = 60) -> str:
    return text if len(text) <= width else text[: width - 1] + "…"


def _now() -> datetime:
    from whirr.clock import utc_now

    return utc_now()
