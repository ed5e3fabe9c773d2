"""``whirr worker``."""

from __future__ import annotations

import click

from whirr.cli.common import Seconds, count, server_option, user_errors


@click.command("worker")
@click.option(
    "--gpu",
    "--device",  # the original whirr's name for it (its README: `whirr worker --device 0`)
    "gpu",
    type=count(0, 4095),
    default=None,
    help="One GPU for this worker's jobs (same as --gpus N; --device is the same option).",
)
@click.option(
    "--gpus",
    "gpus_spec",
    default=None,
    metavar="IDS|all",
    help="GPUs to run jobs on, one job per free GPU set: 0,1,2,3 or `all` (detected).",
)
@click.option(
    "--slots",
    type=count(0, 10_000),
    default=1,
    show_default=True,
    help="CPU-only jobs (submit --gpus 0, or any job on a GPU-less worker) run at once "
    "(0: GPU jobs only).",
)
@click.option("--id", "worker_id", default=None, help="Worker id (default: HOSTNAME-PID).")
@click.option(
    "--exit-when-empty", is_flag=True, help="Exit once no job is queued (for scripts and CI)."
)
@click.option("-q", "--quiet", is_flag=True, help="Print nothing but errors.")
@server_option()
@click.option(
    "-d",
    "--data-dir",
    envvar="WHIRR_DATA_DIR",
    show_envvar=True,
    help="With --server: where run files go (the server's data dir, shared); required.",
)
@click.option(
    "--lease-seconds",
    type=Seconds(10, 600),
    default=60.0,
    show_default=True,
    help="With --server: lease length; heartbeats renew it.",
)
@click.option(
    "--heartbeat-interval",
    type=Seconds(0.1, 3600),
    default=None,
    help="With --server: seconds between heartbeats [default: lease / 3].",
)
@click.option(
    "--kill-grace-period",
    type=Seconds(0, 3600),
    default=10.0,
    show_default=True,
    help="With --server: SIGTERM -> SIGKILL delay.",
)
@click.option(
    "--warn-run-dir-size",
    "warn_run_dir_size",
    default="10GiB",
    show_default=True,
    envvar="WHIRR_WARN_RUN_DIR_SIZE",
    show_envvar=True,
    metavar="SIZE|off",
    help="Warn once (logged, and recorded on the run: whirr show) when a running job's "
    "run directory passes this size; `off`: never.",
)
@click.option(
    "--max-output-size",
    "max_output_size",
    default="1GiB",
    show_default=True,
    envvar="WHIRR_MAX_OUTPUT_SIZE",
    show_envvar=True,
    metavar="SIZE|off",
    help="Cap on each job's output.log: past it the log keeps the first SIZE minus 1 MiB "
    "and the last 1 MiB (a quarter of SIZE below 4 MiB), with a line saying what was "
    "dropped; `off`: keep all of it.",
)
@user_errors
def worker_cmd(
    gpu: int | None,
    gpus_spec: str | None,
    slots: int,
    worker_id: str | None,
    exit_when_empty: bool,
    quiet: bool,
    server: str | None,
    data_dir: str | None,
    lease_seconds: float,
    heartbeat_interval: float | None,
    kill_grace_period: float,
    warn_run_dir_size: str,
    max_output_size: str,
) -> None:
    """Claim queued jobs and run them until stopped: one at a time by default,
    several at once with --gpus (one job per free GPU set, each job sees only
    its GPUs in CUDA_VISIBLE_DEVICES) and --slots (CPU-only jobs).

    With --server the jobs come from a whirr server, with the same options and
    the same scheduling (GPU packing, priorities, dependencies, retries, time
    limits) as a local worker; run files go to --data-dir.

    Each job runs in its own process group with its output in
    .whirr/runs/job-N/output.log; past --max-output-size (1 GiB) the log
    keeps the first 1023 MiB and the last 1 MiB of it. Ctrl+C (or SIGTERM, or `whirr drain ID`)
    once: finish the running jobs and exit; twice: stop them (SIGTERM, SIGKILL
    after the kill grace; they end cancelled, "worker interrupted", never
    retried) and exit; three times: SIGKILL them now.

    \b
    Examples:
      whirr worker
      whirr worker --gpus all            # every GPU NVML/nvidia-smi finds
      whirr worker --gpus 0,1 --slots 4  # 2 GPUs + 4 CPU-only jobs at once
      whirr worker --gpu 1               # one GPU (same as --gpus 1)
      whirr worker --exit-when-empty     # drain the queue, then exit
      whirr worker --server http://head:8080 -d /shared/whirr --gpus all --slots 2
    """
    from whirr.gpus import GpuSpecError, parse_gpus
    from whirr.projections.queue import Capacity

    try:
        gpu_ids = parse_gpus(gpus_spec) if gpus_spec is not None else []
    except GpuSpecError as exc:
        raise click.BadParameter(str(exc), param_hint="--gpus") from None
    if gpus_spec is not None and gpus_spec.strip().lower() == "all" and not gpu_ids:
        raise click.UsageError("--gpus all: no GPU found (NVML and nvidia-smi found none)")
    if gpu is not None and gpu not in gpu_ids:
        gpu_ids.append(gpu)
    capacity = Capacity(tuple(gpu_ids), slots)
    warn_bytes = _size_or_off(warn_run_dir_size, "--warn-run-dir-size")
    max_output_bytes = _size_or_off(max_output_size, "--max-output-size")

    def say(message: str) -> None:
        if not quiet:
            click.echo(message, err=True)

    from whirr.worker.start import open_worker

    with open_worker(
        server,
        capacity,
        data_dir=data_dir,
        worker_id=worker_id,
        exit_when_empty=exit_when_empty,
        lease_seconds=lease_seconds,
        heartbeat_interval=heartbeat_interval,
        kill_grace_period=kill_grace_period,
        warn_run_dir_bytes=warn_bytes,
        max_output_bytes=max_output_bytes,
        say=say,
    ) as loop:
        code = loop.run()
    raise SystemExit(code)


def _size_or_off(text: str, option: str) -> int | None:
    """A size option's bytes, or None for ``off``."""
    if text.strip().lower() == "off":
        return None
    from whirr.cli.server import parse_size

    return parse_size(text, option)
