"""Scheduling on the command line: ``submit``'s scheduling options, what ``status`` says
about a waiting job, ``whirr priority`` and ``whirr queue pause|resume``."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any, TypeVar

import click

from whirr.cli.common import GPUS, JOB_REF, PRIORITY, emit_json, server_option, user_errors
from whirr.clock import local_time
from whirr.facade import open_whirr

F = TypeVar("F", bound=Callable[..., Any])

_DURATION = re.compile(r"(\d+(?:\.\d+)?)\s*([smhd]?)")
_UNIT = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}


#: The longest duration ``--timeout`` takes (as ``POST /jobs``'s ``timeout_seconds``).
MAX_DURATION = 10_000_000.0


def parse_duration(text: str, option: str | None = None) -> float:
    """``90`` / ``90s`` / ``15m`` / ``2h`` / ``1h30m`` / ``1d`` -> seconds (positive, at
    most ``MAX_DURATION``). ``option``: the option named in an error."""
    hint = f"'{option}'" if option else None
    spec = text.strip().lower().replace(" ", "")
    if not spec:
        raise click.BadParameter(
            "an empty duration: give one like 90s, 15m, 2h or 1h30m", param_hint=hint
        )
    pos, total = 0, 0.0
    while pos < len(spec):
        match = _DURATION.match(spec, pos)
        if match is None or match.end() == pos:
            raise click.BadParameter(
                f"{text!r} is not a duration like 90s, 15m, 2h or 1h30m", param_hint=hint
            )
        total += float(match.group(1)) * _UNIT[match.group(2)]
        pos = match.end()
    if total <= 0:
        raise click.BadParameter(f"{text!r}: a duration must be positive", param_hint=hint)
    if total > MAX_DURATION:  # also what a 400-digit number becomes: inf
        raise click.BadParameter(
            f"{text[:40]!r}: a duration must be at most {MAX_DURATION:.0f}s", param_hint=hint
        )
    return total


_SIZE = re.compile(r"(\d+(?:\.\d+)?)\s*([kmgtp]?)(i?b?)")
#: The memory limits ``--memory`` takes (as ``POST /jobs``'s ``memory_bytes``).
MIN_MEMORY, MAX_MEMORY = 2**20, 2**50


def parse_size(text: str, option: str | None = None) -> int:
    """``16G`` / ``512M`` / ``1.5GiB`` / ``1073741824`` -> bytes (binary units: G is
    2**30), between 1 MiB and 1 PiB. ``option``: the option named in an error."""
    hint = f"'{option}'" if option else None
    match = _SIZE.fullmatch(text.strip().lower().replace(" ", ""))
    if match is None:
        raise click.BadParameter(f"{text[:40]!r} is not a size like 512M or 16G", param_hint=hint)
    value = float(match.group(1)) * 1024 ** "bkmgtp".index(match.group(2) or "b")
    if not MIN_MEMORY <= value <= MAX_MEMORY:
        raise click.BadParameter(
            f"{text[:40]!r}: a memory limit must be between 1M and 1P", param_hint=hint
        )
    return int(value)


def parse_ids(text: str, option: str | None = None) -> list[int]:
    """``3,4, 7`` -> ``[3, 4, 7]`` (for ``--after``); ``#3`` and ``job-3`` work too."""
    from whirr.wire.refs import job_number

    hint = f"'{option}'" if option else None
    if not text.strip():
        return []
    ids = []
    for part in text.replace(" ", "").split(","):
        number = job_number(part) if part else None
        if number is None:
            raise click.BadParameter(
                f"{text[:60]!r}: give job ids like 3 or 3,4,7", param_hint=hint
            )
        ids.append(number)
    return ids


def scheduling_options(func: F) -> F:
    """The options ``submit`` takes to say where, when and how often a job runs."""
    options = [
        click.option(
            "--gpus",
            type=GPUS,
            default=None,
            help="GPUs the job needs (default: 1 on a GPU worker; 0: CPU-only, takes a slot).",
        ),
        click.option(
            "-p",
            "--priority",
            type=PRIORITY,
            default=0,
            show_default=True,
            help="Higher runs first; FIFO within a priority. Change later: `whirr priority`.",
        ),
        click.option(
            "--after",
            default="",
            metavar="ID[,ID...]",
            help="Run only after these jobs completed; if one fails, this one is cancelled.",
        ),
        click.option(
            "--after-any",
            is_flag=True,
            help="With --after: run once they ended, however they ended.",
        ),
        click.option(
            "--retries",
            type=click.IntRange(0, 100),
            default=0,
            show_default=True,
            help="Retry a failed attempt this often (same job id, exponential backoff).",
        ),
        click.option(
            "--timeout",
            default=None,
            metavar="DURATION",
            help="Kill the job's process group after this long (90s, 15m, 2h): timed_out.",
        ),
        click.option(
            "--memory",
            default=None,
            metavar="SIZE",
            help="Memory limit of the whole job (512M, 16G) where the worker can set one "
            "(cgroup v2; see `whirr doctor`).",
        ),
        click.option(
            "--cpus",
            type=click.FloatRange(0.01, 4096),
            default=None,
            help="CPU limit of the whole job, in CPUs (2, 0.5) where the worker can set one.",
        ),
        click.option(
            "--snapshot/--no-snapshot",
            default=None,
            help="Run from a copy of the code taken now (default: config `snapshot`).",
        ),
    ]
    for option in reversed(options):
        func = option(func)
    return func


@click.command("priority")
@click.argument("job_id", type=JOB_REF)
@click.argument("priority", type=PRIORITY)
@server_option()
@user_errors
def priority_cmd(job_id: int, priority: int, server: str | None) -> None:
    """Change queued JOB_ID's PRIORITY (higher runs first; negative is fine).

    \b
    Examples:
      whirr priority 42 10     # ahead of everything at priority < 10
      whirr priority 42 -- -5  # behind the default 0
    """
    with open_whirr(server) as whirr:
        job = whirr.set_priority(job_id, priority)
    click.echo(f"Job #{job.id} now has priority {job.priority}")


@click.group("queue", invoke_without_command=True)
@click.option("--json", "as_json", is_flag=True, help="Print the queue's state as JSON.")
@server_option()
@click.pass_context
def queue_cmd(ctx: click.Context, as_json: bool, server: str | None) -> None:
    """Pause or resume the whole queue; with no subcommand, say whether it is paused.

    While paused, no worker claims a new job; running jobs go on.

    \b
    Examples:
      whirr queue pause -r "disk full"
      whirr queue resume
      whirr queue --json
      whirr queue --server http://head:8080 pause
    """
    ctx.obj = server
    if ctx.invoked_subcommand is None:
        _show_queue(server, as_json)


@user_errors
def _show_queue(server: str | None, as_json: bool) -> None:
    with open_whirr(server) as whirr:
        state = whirr.queue()
    if as_json:
        emit_json(state)
        return
    word = "paused" if state.paused else "running"
    since = f" since {local_time(state.since)}" if state.since else ""
    reason = f" ({state.reason})" if state.reason else ""
    click.echo(f"Queue {word}{since}{reason}: {state.queued} queued, {state.running} running.")


@queue_cmd.command("pause")
@click.option("-r", "--reason", default="", help="Why (shown by `whirr queue`).")
@click.pass_obj
@user_errors
def queue_pause_cmd(server: str | None, reason: str) -> None:
    """Stop workers from claiming new jobs (running jobs go on)."""
    with open_whirr(server) as whirr:
        changed = whirr.pause(reason).changed
    click.echo("Queue paused." if changed else "Queue was already paused.")


@queue_cmd.command("resume")
@click.pass_obj
@user_errors
def queue_resume_cmd(server: str | None) -> None:
    """Let workers claim jobs again."""
    with open_whirr(server) as whirr:
        changed = whirr.resume().changed
    click.echo("Queue resumed." if changed else "Queue was not paused.")
