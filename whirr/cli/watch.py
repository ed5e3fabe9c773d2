"""``whirr watch``: the live terminal view."""

from __future__ import annotations

import contextlib
from typing import Any

import click

from whirr.cli.common import user_errors


@click.command("watch")
@click.option(
    "-i",
    "--interval",
    type=click.FloatRange(min=0.1),
    default=2.0,
    show_default=True,
    help="Seconds between redraws for logs, metrics and the clock (events redraw at once).",
)
@click.option(
    "-j",
    "--job",
    "job_id",
    type=int,
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
    type=click.IntRange(min=1),
    default=10,
    show_default=True,
    help="Log lines shown for the selected job.",
)
@click.option(
    "-s",
    "--server",
    envvar="WHIRR_SERVER_URL",
    show_envvar=True,
    default=None,
    help="Watch a server instead of the local project.",
)
@click.option("--once", is_flag=True, help="Print one frame and exit (no full screen).")
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
    happens. Keys: q quits, ↑/↓ (or k/j) select a job. Works over SSH.

    \b
    Examples:
      whirr watch
      whirr watch -j 42 -m val_loss
      whirr watch --server http://head-node:8080
      whirr watch --once          # one frame, e.g. in a script
    """
    if server:
        from whirr.client import WhirrClient
        from whirr.watch.sources import ServerSource

        with WhirrClient(server) as client:
            _show(ServerSource(client, metric=metric), job_id, interval, lines, once)
        return

    from whirr.cli.common import project_store
    from whirr.watch.sources import LocalSource

    with project_store() as (project, store):
        local = LocalSource(
            store,
            project.runs_dir,
            label=str(project.root),
            heartbeat_timeout=project.config.heartbeat_timeout,
            metric=metric,
        )
        _show(local, job_id, interval, lines, once)


def _show(source: Any, job_id: int | None, interval: float, lines: int, once: bool) -> None:
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
