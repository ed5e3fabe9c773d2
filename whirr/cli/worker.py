"""``whirr worker``."""

from __future__ import annotations

import click

from whirr.cli.common import project_store, user_errors


@click.command("worker")
@click.option(
    "--gpu",
    type=click.IntRange(min=0),
    default=None,
    help="GPU index for this worker's jobs (sets CUDA_VISIBLE_DEVICES).",
)
@click.option("--id", "worker_id", default=None, help="Worker id (default: HOSTNAME-PID).")
@click.option(
    "--exit-when-empty", is_flag=True, help="Exit once no job is queued (for scripts and CI)."
)
@click.option("-q", "--quiet", is_flag=True, help="Print nothing but errors.")
@user_errors
def worker_cmd(gpu: int | None, worker_id: str | None, exit_when_empty: bool, quiet: bool) -> None:
    """Claim queued jobs and run them, one at a time, until stopped.

    Each job runs in its own process group with its output in
    .whirr/runs/job-N/output.log. Ctrl+C (or SIGTERM) once: finish the
    current job and exit; twice: kill it and exit. For several GPUs, start
    one worker per GPU.

    \b
    Examples:
      whirr worker
      whirr worker --gpu 1
      whirr worker --exit-when-empty   # drain the queue, then exit
    """
    from whirr.worker.local import LocalWorker

    def say(message: str) -> None:
        if not quiet:
            click.echo(message, err=True)

    with project_store() as (project, store):
        worker = LocalWorker(
            store,
            project.runs_dir,
            project.config,
            worker_id=worker_id,
            gpu=gpu,
            exit_when_empty=exit_when_empty,
            say=say,
        )
        raise SystemExit(worker.run())
