"""The remote side of the job and run commands: with ``--server URL`` (or
``WHIRR_SERVER_URL``) ``submit``, ``status``, ``cancel``, ``retry``, ``logs``, ``runs``,
``show`` talk to a whirr server through ``WhirrClient`` instead of the local
project. Output matches the local commands; ``--json`` prints the API's shapes."""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence
from datetime import UTC, datetime
from types import SimpleNamespace
from typing import Any

import click

from whirr.cli.common import ago, duration, emit_json, print_table

#: The option every remote-capable command takes (commands whose ``-s`` means something
#: else use ``server_option(short=False)``).
SERVER_HELP = "Talk to this whirr server (http://host:8080) instead of the local project."


def server_option(short: bool = True) -> Any:
    """``-s/--server URL`` (``WHIRR_SERVER_URL``)."""
    names = ("-s", "--server") if short else ("--server",)
    return click.option(
        *names,
        "server",
        envvar="WHIRR_SERVER_URL",
        show_envvar=True,
        default=None,
        metavar="URL",
        help=SERVER_HELP,
    )


def client(server: str) -> Any:
    """A client for ``server`` with the token from ``WHIRR_TOKEN``."""
    from whirr.client import WhirrClient

    return WhirrClient(server)


def submit(
    server: str,
    command: Sequence[str],
    *,
    name: str | None,
    tags: Sequence[str],
    max_attempts: int | None,
    as_json: bool,
) -> None:
    """``whirr submit --server``: queue the command with the cwd as its workdir."""
    with client(server) as c:
        done = c.submit(
            list(command),
            os.getcwd(),
            name=name,
            tags=[t for t in tags if t],
            max_attempts=max_attempts,
        )
        if as_json:
            emit_json(c.get_job(done.job_id))
            return
    click.echo(f"Submitted job #{done.job_id}")


def status(
    server: str,
    job_id: int | None,
    *,
    show_all: bool,
    status: str | None,
    limit: int,
    as_json: bool,
) -> None:
    """``whirr status --server``: active jobs, all jobs, or one job."""
    from whirr.cli.jobs import _print_job

    with client(server) as c:
        if job_id is not None:
            job = c.get_job(job_id)
            if as_json:
                emit_json(job)
            else:
                _print_job(job)
            return
        wanted = "active" if status == "active" or (status is None and not show_all) else status
        jobs = c.list_jobs(wanted, limit=10_000 if wanted == "active" else limit)
        counts = c.status()
    if as_json:
        emit_json({"jobs": jobs})
        return
    if not jobs:
        hint = "" if show_all or status else " (use --all to include finished jobs)"
        click.echo(f"No jobs{' with status ' + status if status else ''}{hint}.")
    else:
        now = datetime.now(UTC)
        rows = []
        for j in sorted(jobs, key=lambda j: j.id):
            if j.status == "running" and j.started_at is not None:
                when = duration((now - j.started_at).total_seconds())
            else:
                when = ago(j.finished_at or j.created_at, now)
            word = j.status + (
                " (cancelling)" if j.cancel_requested and j.status == "running" else ""
            )
            command = " ".join(j.command_argv)
            rows.append(
                [
                    str(j.id),
                    j.name or "-",
                    word,
                    str(j.attempt),
                    j.worker_id or "-",
                    when,
                    command if len(command) <= 60 else command[:59] + "…",
                ]
            )
        print_table(["ID", "NAME", "STATUS", "TRY", "WORKER", "TIME", "COMMAND"], rows)
    words = ("queued", "running", "completed", "failed", "cancelled", "timed_out")
    summary = ", ".join(f"{getattr(counts, w)} {w}" for w in words if getattr(counts, w))
    click.echo(f"\n{summary or 'queue empty'}")


def cancel(server: str, job_id: int | None, all_queued: bool) -> None:
    """``whirr cancel --server``."""
    with client(server) as c:
        if all_queued:
            done = c.cancel_all_queued()
            ids = ", ".join(f"#{i}" for i in done.cancelled)
            click.echo(f"Cancelled {done.count} queued job(s)" + (f": {ids}" if ids else ""))
            return
        assert job_id is not None
        answer = c.cancel(job_id)
    if answer.previous_status == "queued":
        click.echo(f"Cancelled job #{job_id} (was queued)")
    else:
        click.echo(f"Cancel requested for job #{job_id}; its worker stops it at its next heartbeat")


def retry(server: str, job_id: int) -> None:
    """``whirr retry --server``."""
    with client(server) as c:
        done = c.retry(job_id)
        job = c.get_job(done.job_id)
    click.echo(f"Submitted job #{job.id} (retry of #{job_id}, attempt {job.attempt})")


def logs(server: str, job_id: int, *, follow: bool, tail: int | None) -> None:
    """``whirr logs --server``: the job's output from the server's data dir."""
    out = sys.stdout.buffer
    with client(server) as c:
        offset = 0
        if tail is not None:
            data = c.logs(job_id)
            lines = data.splitlines(keepends=True)
            out.write(b"".join(lines[-tail:] if tail else []))
            out.flush()
            offset = len(data)
        if not follow:
            if tail is None:
                out.write(c.logs(job_id))
                out.flush()
            return
        try:
            for chunk in c.follow_logs(job_id, offset):
                out.write(chunk)
                out.flush()
        except KeyboardInterrupt:
            return
        job = c.get_job(job_id)
    click.echo(f"[whirr] job #{job_id} {job.status}", err=True)


def runs(server: str, *, status: str | None, tag: str | None, limit: int, as_json: bool) -> None:
    """``whirr runs --server``."""
    from whirr.cli.runs import print_runs

    with client(server) as c:
        found = c.runs(status=status, tag=tag, limit=limit)
    if as_json:
        emit_json({"runs": found})
        return
    print_runs(found, status, tag)


def show(server: str, run_id: str, *, as_json: bool) -> None:
    """``whirr show --server``: a run with its last metrics and artifacts."""
    import msgspec

    from whirr.cli.runs import _print_run, latest_values

    with client(server) as c:
        run = c.get_run(run_id)
        rows = c.metrics(run.id)
        artifacts = c.artifacts(run.id)
    latest = latest_values(rows[-50:])
    if as_json:
        emit_json(
            {
                **msgspec.to_builtins(run),
                "artifacts": artifacts,
                "last_metrics": latest,
                "metrics_rows": len(rows),
            }
        )
        return
    # The local renderer reads a RunView; give it the same attributes.
    view = SimpleNamespace(
        **{f: getattr(run, f) for f in run.__struct_fields__ if f != "artifacts"},
        pid=None,
        artifacts=artifacts,
    )
    _print_run(view, latest, rows)
