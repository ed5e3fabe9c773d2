"""``whirr workers`` and ``whirr drain``."""

from __future__ import annotations

from typing import Any

import click

from whirr.cli.common import ago, emit_json, print_table, project_store, user_errors


def worker_json(worker: Any, online: bool) -> dict[str, Any]:
    """One worker for ``--json``: the API's keys plus GPUs, slots and jobs."""
    return {
        "id": worker.id,
        "hostname": worker.hostname,
        "pid": worker.pid,
        "status": worker.status if online or worker.stopped else "offline",
        "online": online,
        "gpu_ids": worker.gpu_ids,
        "gpu_id": worker.gpu_ids[0] if worker.gpu_ids else None,
        "slots": worker.slots,
        "draining": worker.draining,
        "current_job_ids": worker.current_job_ids,
        "current_job_id": worker.current_job_ids[0] if worker.current_job_ids else None,
        "registered_at": worker.registered_at,
        "heartbeat_at": worker.heartbeat_at,
    }


@click.command("workers")
@click.option("-a", "--all", "show_all", is_flag=True, help="Include stopped workers.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@user_errors
def workers_cmd(show_all: bool, as_json: bool) -> None:
    """List workers: their GPUs, CPU slots, running jobs and whether they are alive.

    A worker not heard from within heartbeat_timeout shows as offline.

    \b
    Examples:
      whirr workers
      whirr workers --all --json
    """
    from whirr.clock import utc_now

    with project_store() as (project, store):
        now = utc_now()
        timeout = project.config.heartbeat_timeout
        rows = [(w, w.is_online(now, timeout)) for w in store.workers()]
        jobs = {j: store.job(j) for w, _ in rows for j in w.current_job_ids}
    if not show_all:
        rows = [(w, online) for w, online in rows if not w.stopped]
    if as_json:
        emit_json({"workers": [worker_json(w, online) for w, online in rows]})
        return
    if not rows:
        click.echo("No workers" + ("." if show_all else " running (use --all for stopped ones)."))
        return
    table = []
    for w, online in rows:
        held = []
        for j in w.current_job_ids:
            job = jobs.get(j)
            gpus = getattr(job.state, "gpu_ids", []) if job is not None else []
            held.append(f"#{j}" + (f"@{','.join(map(str, gpus))}" if gpus else ""))
        table.append(
            [
                w.id,
                worker_json(w, online)["status"],
                ",".join(map(str, w.gpu_ids)) or "-",
                str(w.slots),
                " ".join(held) or "-",
                ago(w.heartbeat_at, now),
                w.hostname,
            ]
        )
    print_table(["WORKER", "STATUS", "GPUS", "SLOTS", "JOBS", "SEEN", "HOST"], table)


@click.command("drain")
@click.argument("worker_id")
@user_errors
def drain_cmd(worker_id: str) -> None:
    """Ask WORKER_ID to finish its running jobs, claim nothing new, and exit.

    \b
    Example:
      whirr drain gpu-box-4242      # ids as `whirr workers` lists them
    """
    from whirr.services import Workers

    with project_store() as (_, store):
        worker = Workers(store).drain(worker_id)
    running = len(worker.current_job_ids)
    click.echo(f"Draining worker {worker_id}: it exits after its {running} running job(s).")
