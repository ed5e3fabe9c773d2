"""``whirr logs``: print a job's output.log, optionally following it until the job ends."""

from __future__ import annotations

import sys

import click

from whirr.cli.common import JOB_REF, count, server_option, user_errors
from whirr.facade import open_whirr


@click.command("logs")
@click.argument("job_id", type=JOB_REF)
@click.option(
    "-f", "--follow", is_flag=True, help="Keep printing new output; stop when the job ends."
)
@click.option(
    "-n",
    "--tail",
    "tail",
    type=count(0),
    default=None,
    help="Start with only the last N lines.",
)
@server_option()
@user_errors
def logs_cmd(job_id: int, follow: bool, tail: int | None, server: str | None) -> None:
    """Print the output (stdout and stderr) of job JOB_ID (12, #12 or job-12).

    \b
    Examples:
      whirr logs 42
      whirr logs 42 -f        # follow until the job finishes
      whirr logs 42 -n 20 -f
    """
    out = sys.stdout.buffer
    with open_whirr(server) as whirr:
        job = whirr.job(job_id)
        data = whirr.read_log(job_id)
        offset = len(data)
        if tail is not None:
            lines = data.splitlines(keepends=True)
            data = b"".join(lines[-tail:] if tail else [])
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
