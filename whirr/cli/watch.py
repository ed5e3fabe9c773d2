"""``whirr watch``: the live terminal view."""

from __future__ import annotations

import contextlib
from typing import TYPE_CHECKING

import click

from whirr.cli.common import JOB_REF, Seconds, count, server_option, user_errors

if TYPE_CHECKING:
    from whirr.watch.sources import WhirrSource


@click.command("watch")
@click.option(
    "-i",
    "--interval",
    type=Seconds(0.1, 3600),
    default=2.0,
    show_default=True,
    help="Seconds between redraws for logs, metrics and the clock (events redraw at once).",
)
@click.option(
    "-j",
    "--job",
    "job_id",
    type=JOB_REF,
    default=None,
    help="Job to show first (default: the first running one).",
)
@click.option(
    "-m",
    "--metric",
    default=None,
    help="Metric to chart for the selected job (default: the first one it logs).",
)
@click.option(
    "-n",
    "--lines",
    type=count(1, 10_000),
    default=10,
    show_default=True,
    help="Log lines shown for the selected job.",
)
@server_option()
@click.option(
    "--once",
    is_flag=True,
    help="Print one frame, every job listed, and exit (no full screen, no keys).",
)
@user_errors
def watch_cmd(
    interval: float,
    job_id: int | None,
    metric: str | None,
    lines: int,
    server: str | None,
    once: bool,
) -> None:
    """Live full-screen view of jobs and workers, with the selected job's last log
    lines and a sparkline of its main metric. Redraws as soon as something
    happens, and fits the terminal (80x24 and up). Keys: q quits, ↑/↓ (or k/j)
    select a job, PgUp/PgDn a page, g/G the first/last (the list scrolls, and
    lists older finished jobs past the last). Works over SSH.

    \b
    Examples:
      whirr watch
      whirr watch -j 42 -m val_loss
      whirr watch --server http://head-node:8080
      whirr watch --once          # one frame, e.g. in a script
    """
    from whirr.facade import open_whirr
    from whirr.watch.sources import WhirrSource

    with open_whirr(server) as whirr:
        _show(WhirrSource(whirr, metric=metric), job_id, interval, lines, once)


def _show(source: WhirrSource, job_id: int | None, interval: float, lines: int, once: bool) -> None:
    """One frame (``--once``), or the live view until q or Ctrl+C."""
    from rich.console import Console

    from whirr.watch import app
    from whirr.watch.render import render_text

    console = Console()
    watcher = app.Watcher(source, job_id)
    if once:
        click.echo(render_text(watcher.state, console.width, lines), nl=False)
        return
    with contextlib.suppress(KeyboardInterrupt):  # Ctrl+C is a way to quit too
        app.run(watcher, console, interval, lines)
