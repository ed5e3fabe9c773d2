"""``whirr logs``: print a job's output.log, optionally following it until the job ends."""

from __future__ import annotations

import sys

import click

from whirr.cli.common import JOB_REF, count, server_option, user_errors
from whirr.facade import Whirr, open_whirr
from whirr.wire import schemas

#: Lines of each job ``whirr logs --failed`` prints when no --tail is given.
FAILED_TAIL = 20
#: Jobs ``whirr logs --failed`` looks at (newest first).
FAILED_LIMIT = 50
#: What ``--failed`` reads of a job's output for each line it shows (at most 1 MiB).
_BYTES_PER_LINE = 4096
_MAX_TAIL_BYTES = 1 << 20


@click.command("logs")
@click.argument("job_id", type=JOB_REF, required=False)
@click.option(
    "-f", "--follow", is_flag=True, help="Keep printing new output; stop when the job ends."
)
@click.option(
    "-n",
    "--tail",
    "tail",
    type=count(0),
    default=None,
    help=f"Start with only the last N lines (with --failed: default {FAILED_TAIL}).",
)
@click.option(
    "--failed",
    is_flag=True,
    help=f"The last lines of each failed job (the newest {FAILED_LIMIT}), each under a "
    "header with its exit code and error.",
)
@server_option()
@user_errors
def logs_cmd(
    job_id: int | None, follow: bool, tail: int | None, failed: bool, server: str | None
) -> None:
    """Print the output (stdout and stderr) of job JOB_ID (12, #12 or job-12).

    \b
    Examples:
      whirr logs 42
      whirr logs 42 -f        # follow until the job finishes
      whirr logs 42 -n 20 -f
      whirr logs --failed -n 5  # why did they fail? the last 5 lines of each
    """
    if failed:
        if job_id is not None or follow:
            raise click.UsageError("--failed takes no JOB_ID and no --follow")
        _failed_logs(FAILED_TAIL if tail is None else tail, server)
        return
    if job_id is None:
        raise click.UsageError("give a JOB_ID (or --failed)")
    out = sys.stdout.buffer
    with open_whirr(server) as whirr:
        job = whirr.job(job_id)
        data = whirr.read_log(job_id)
        offset = len(data)
        if tail is not None:
            data = _last_lines(data, tail)
        if not data and not follow and job.status in ("queued", "running"):
            click.echo(f"No output yet for job #{job_id} ({job.status}).", err=True)
        out.write(data)
        out.flush()
        if not follow:
            return
        try:
            for chunk in whirr.follow_log(job_id, offset):
                out.write(chunk)
                out.flush()
        except KeyboardInterrupt:
            return
        job = whirr.job(job_id)
    click.echo(f"[whirr] job #{job_id} {job.status}", err=True)


def _failed_logs(tail: int, server: str | None) -> None:
    """Each failed job's header and last ``tail`` lines, oldest job first."""
    out = sys.stdout.buffer
    with open_whirr(server) as whirr:
        jobs = sorted(whirr.jobs(["failed"], FAILED_LIMIT), key=lambda j: j.id)
        if not jobs:
            click.echo("No failed jobs.", err=True)
            return
        for i, job in enumerate(jobs):
            click.echo(("\n" if i else "") + _header(job))
            out.write(_tail_bytes(whirr, job.id, tail))
            out.flush()


def _header(job: schemas.Job) -> str:
    """``==> job #12 (name): failed, exit 3: error <==``, naming what is known."""
    name = f" ({job.name})" if job.name else ""
    said = [job.status]
    if job.exit_code is not None:
        said.append(f"exit {job.exit_code}")
    if job.error:
        said.append(job.error)
    return f"==> job #{job.id}{name}: {', '.join(said)} <=="


def _tail_bytes(whirr: Whirr, job_id: int, lines: int) -> bytes:
    """The last ``lines`` lines of the job's output, read from its end: a few KiB a line
    is plenty for a traceback and spares reading a huge log whole."""
    if not lines:
        return b""
    want = min(lines * _BYTES_PER_LINE, _MAX_TAIL_BYTES)
    _, data = whirr.log_tail(job_id, want)
    data = _last_lines(data, lines)
    return data if not data or data.endswith(b"\n") else data + b"\n"


def _last_lines(data: bytes, lines: int) -> bytes:
    """The last ``lines`` lines of ``data`` (none for 0)."""
    kept = data.splitlines(keepends=True)
    return b"".join(kept[-lines:] if lines else [])
