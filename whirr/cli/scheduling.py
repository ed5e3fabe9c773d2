"""Scheduling on the command line: ``submit``'s scheduling options, what ``status`` says
about a waiting job, ``whirr priority`` and ``whirr queue pause|resume``."""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import datetime
from typing import Any, TypeVar

import click

from whirr.cli.common import duration, emit_json, local_time, project_store, user_errors

F = TypeVar("F", bound=Callable[..., Any])

_DURATION = re.compile(r"(\d+(?:\.\d+)?)\s*([smhd]?)")
_UNIT = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_duration(text: str) -> float:
    """``90`` / ``90s`` / ``15m`` / ``2h`` / ``1h30m`` / ``1d`` -> seconds."""
    spec = text.strip().lower().replace(" ", "")
    pos, total = 0, 0.0
    while pos < len(spec):
        match = _DURATION.match(spec, pos)
        if match is None or match.end() == pos:
            raise click.BadParameter(f"{text!r} is not a duration like 90s, 15m, 2h or 1h30m")
        total += float(match.group(1)) * _UNIT[match.group(2)]
        pos = match.end()
    if total <= 0:
        raise click.BadParameter(f"{text!r}: a duration must be positive")
    return total


def parse_ids(text: str) -> list[int]:
    """``3,4, 7`` -> ``[3, 4, 7]`` (for ``--after``)."""
    ids = []
    for part in text.replace(" ", "").split(","):
        if not part:
            continue
        if not part.lstrip("#").isdigit():
            raise click.BadParameter(f"{text!r}: give job ids like 3 or 3,4,7")
        ids.append(int(part.lstrip("#")))
    return ids


def scheduling_options(func: F) -> F:
    """The options ``submit`` takes to say where, when and how often a job runs."""
    options = [
        click.option(
            "--gpus",
            type=click.IntRange(min=0),
            default=None,
            help="GPUs the job needs (default: 1 on a GPU worker; 0: CPU-only, takes a slot).",
        ),
        click.option(
            "-p",
            "--priority",
            type=int,
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
            "--snapshot/--no-snapshot",
            default=None,
            help="Run from a copy of the code taken now (default: config `snapshot`).",
        ),
    ]
    for option in reversed(options):
        func = option(func)
    return func


def waiting_note(job: Any, now: datetime, live_workers: list[Any]) -> str:
    """Why a queued job is not running yet ("" when nothing holds it back)."""
    from whirr.projections.jobs import Queued
    from whirr.projections.queue import unschedulable

    state = job.state
    if not isinstance(state, Queued):
        return ""
    if job.waiting_on:
        return "waiting on " + ",".join(f"#{j}" for j in job.waiting_on)
    if state.not_before is not None and state.not_before > now:
        return f"retry in {duration((state.not_before - now).total_seconds())}"
    reason = unschedulable(job, live_workers)
    return f"unschedulable: {reason}" if reason else ""


def live_workers(store: Any, heartbeat_timeout: float, now: datetime) -> list[Any]:
    """Workers that are online and take new jobs (not draining)."""
    return [w for w in store.workers() if w.is_online(now, heartbeat_timeout) and not w.draining]


@click.command("priority")
@click.argument("job_id", type=int)
@click.argument("priority", type=int)
@user_errors
def priority_cmd(job_id: int, priority: int) -> None:
    """Change queued JOB_ID's PRIORITY (higher runs first; negative is fine).

    \b
    Examples:
      whirr priority 42 10     # ahead of everything at priority < 10
      whirr priority 42 -- -5  # behind the default 0
    """
    from whirr.services import Queue

    with project_store() as (_, store):
        job = Queue(store).set_priority(job_id, priority)
    click.echo(f"Job #{job.id} now has priority {job.priority}")


@click.group("queue", invoke_without_command=True)
@click.option("--json", "as_json", is_flag=True, help="Print the queue's state as JSON.")
@click.pass_context
def queue_cmd(ctx: click.Context, as_json: bool) -> None:
    """Pause or resume the whole queue; with no subcommand, say whether it is paused.

    While paused, no worker claims a new job; running jobs go on.

    \b
    Examples:
      whirr queue pause -r "disk full"
      whirr queue resume
      whirr queue --json
    """
    if ctx.invoked_subcommand is None:
        _show_queue(as_json)


@user_errors
def _show_queue(as_json: bool) -> None:
    from whirr.services import Queue

    with project_store() as (_, store):
        state = Queue(store).state()
        counts = store.job_counts()
    if as_json:
        emit_json(
            {
                "paused": state.paused,
                "since": state.since,
                "reason": state.reason,
                "queued": counts.get("queued", 0),
                "running": counts.get("running", 0),
            }
        )
        return
    word = "paused" if state.paused else "running"
    since = f" since {local_time(state.since)}" if state.since else ""
    reason = f" ({state.reason})" if state.reason else ""
    click.echo(
        f"Queue {word}{since}{reason}: {counts.get('queued', 0)} queued, "
        f"{counts.get('running', 0)} running."
    )


@queue_cmd.command("pause")
@click.option("-r", "--reason", default="", help="Why (shown by `whirr queue`).")
@user_errors
def queue_pause_cmd(reason: str) -> None:
    """Stop workers from claiming new jobs (running jobs go on)."""
    from whirr.services import Queue

    with project_store() as (_, store):
        changed = Queue(store).pause(reason)
    click.echo("Queue paused." if changed else "Queue was already paused.")


@queue_cmd.command("resume")
@user_errors
def queue_resume_cmd() -> None:
    """Let workers claim jobs again."""
    from whirr.services import Queue

    with project_store() as (_, store):
        changed = Queue(store).resume()
    click.echo("Queue resumed." if changed else "Queue was not paused.")
