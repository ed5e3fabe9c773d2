"""``whirr worker``."""

from __future__ import annotations

import click

from whirr.cli import remote
from whirr.cli.common import project_store, user_errors
from whirr.cli.remote import server_option


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
@server_option()
@click.option("-d", "--data-dir", envvar="WHIRR_DATA_DIR", show_envvar=True,
              help="With --server: where run files go (the server's data dir, shared).")
@click.option("--lease-seconds", type=click.FloatRange(10, 600), default=60.0,
              show_default=True, help="With --server: lease length; heartbeats renew it.")
@click.option("--heartbeat-interval", type=click.FloatRange(min=0.1), default=None,
              help="With --server: seconds between heartbeats [default: lease / 3].")
@click.option("--kill-grace-period", type=click.FloatRange(min=0), default=10.0,
              show_default=True, help="With --server: SIGTERM -> SIGKILL delay.")
@user_errors
def worker_cmd(gpu: int | None, worker_id: str | None, exit_when_empty: bool, quiet: bool,
               server: str | None, data_dir: str | None, lease_seconds: float,
               heartbeat_interval: float | None, kill_grace_period: float) -> None:
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
      whirr worker --server http://head:8080 -d /shared/whirr --gpu 0
    """
    if server:
        return remote.worker(server, data_dir, gpu=gpu, worker_id=worker_id,
                             exit_when_empty=exit_when_empty, quiet=quiet,
                             lease_seconds=lease_seconds, heartbeat_interval=heartbeat_interval,
                             kill_grace_period=kill_grace_period)
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
