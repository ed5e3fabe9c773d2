"""``whirr workers`` and ``whirr drain``."""

from __future__ import annotations

import click

from whirr.cli.common import ago, emit_json, print_table, server_option, user_errors
from whirr.facade import open_whirr


@click.command("workers")
@click.option(
    "-a",
    "--all",
    "show_all",
    is_flag=True,
    help="Include stopped workers and those not heard from for forget_workers_after "
    "(default 7 days).",
)
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@server_option()
@user_errors
def workers_cmd(show_all: bool, as_json: bool, server: str | None) -> None:
    """List workers: their GPUs, CPU slots, running jobs and whether they are alive.

    A worker not heard from within heartbeat_timeout shows as offline; one not heard
    from for forget_workers_after (config.yaml; a server's --forget-workers-after;
    default 7 days) is forgotten (listed by --all only), so the ids of restarted
    workers do not pile up.

    \b
    Examples:
      whirr workers
      whirr workers --all --json
    """
    from whirr.clock import utc_now

    with open_whirr(server) as whirr:
        workers = whirr.workers(forgotten=show_all)
        if not show_all:
            workers = [w for w in workers if w.status != "stopped"]
        held = {j: whirr.job(j).gpu_ids for w in workers for j in w.current_job_ids}
    if as_json:
        emit_json({"workers": workers})
        return
    if not workers:
        click.echo("No workers" + ("." if show_all else " running (use --all for stopped ones)."))
        return
    now = utc_now()
    table = []
    for w in workers:
        jobs = [
            f"#{j}" + (f"@{','.join(map(str, held[j]))}" if held[j] else "")
            for j in w.current_job_ids
        ]
        table.append(
            [
                w.id,
                w.status,
                ",".join(map(str, w.gpu_ids)) or "-",
                str(w.slots),
                " ".join(jobs) or "-",
                ago(w.heartbeat_at, now),
                w.hostname,
            ]
        )
    print_table(["WORKER", "STATUS", "GPUS", "SLOTS", "JOBS", "SEEN", "HOST"], table)


@click.command("drain")
@click.argument("worker_id")
@server_option()
@user_errors
def drain_cmd(worker_id: str, server: str | None) -> None:
    """Ask WORKER_ID to finish its running jobs, claim nothing new, and exit.

    \b
    Example:
      whirr drain gpu-box-4242      # ids as `whirr workers` lists them
    """
    with open_whirr(server) as whirr:
        worker = whirr.drain(worker_id)
    running = len(worker.current_job_ids)
    click.echo(f"Draining worker {worker_id}: it exits after its {running} running job(s).")
