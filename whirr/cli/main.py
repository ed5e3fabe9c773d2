"""The ``whirr`` command: a click group whose subcommands are imported only when used, so
``whirr --help`` and ``whirr submit`` start fast."""

from __future__ import annotations

import gc
import importlib
import os
import sys
from typing import Any

import click

#: name -> (module, attribute, one-line help shown by ``whirr --help``).
COMMANDS: dict[str, tuple[str, str, str]] = {
    "init": ("whirr.cli.project", "init_cmd", "Create a whirr project in PATH (default: here)."),
    "doctor": ("whirr.cli.project", "doctor_cmd", "Check the project, database, workers and GPUs."),
    "submit": ("whirr.cli.jobs", "submit_cmd", "Queue a command as a job."),
    "status": ("whirr.cli.jobs", "status_cmd", "Show active jobs, all jobs, or one job."),
    "cancel": ("whirr.cli.jobs", "cancel_cmd", "Cancel a job, or every queued job."),
    "retry": ("whirr.cli.jobs", "retry_cmd", "Queue a failed or cancelled job again."),
    "clean": ("whirr.cli.run_manage", "clean_cmd", "Drop ended jobs from the queue's views."),
    "logs": ("whirr.cli.logs", "logs_cmd", "Print a job's output; -f follows until it ends."),
    "worker": ("whirr.cli.worker", "worker_cmd", "Run a worker that claims and runs jobs."),
    "workers": ("whirr.cli.workers", "workers_cmd", "List workers, their GPUs, slots and jobs."),
    "drain": ("whirr.cli.workers", "drain_cmd", "Make a worker finish its jobs and exit."),
    "priority": ("whirr.cli.scheduling", "priority_cmd", "Change a queued job's priority."),
    "queue": ("whirr.cli.scheduling", "queue_cmd", "Pause or resume the queue (or show it)."),
    "runs": ("whirr.cli.runs", "runs_cmd", "List runs; rename, tag, note, archive, delete."),
    "show": ("whirr.cli.runs", "show_cmd", "Show one run: config, summary, metrics, git."),
    "artifacts": ("whirr.cli.artifacts", "artifacts_cmd", "List or download a run's artifacts."),
    "compare": ("whirr.cli.analytics", "compare_cmd", "Compare runs side by side."),
    "export": ("whirr.cli.analytics", "export_cmd", "Export runs or metrics to csv/json/parquet."),
    "sql": ("whirr.cli.analytics", "sql_cmd", "Query runs, jobs and metrics with DuckDB SQL."),
    "import": ("whirr.cli.importing", "import_cmd", "Import runs from MLflow, TensorBoard or W&B."),
    "events": ("whirr.cli.log", "events_cmd", "Print the event log (optionally following it)."),
    "rebuild": ("whirr.cli.log", "rebuild_cmd", "Rebuild the views by replaying the event log."),
    "log": ("whirr.cli.retention", "log_cmd", "Archive old liveness events of the log."),
    "repair": ("whirr.cli.repair", "repair_cmd", "Void log events that do not decode."),
    "backup": ("whirr.cli.backup", "backup_cmd", "Copy the project consistently into a directory."),
    "restore": ("whirr.cli.backup", "restore_cmd", "Put a backup back as the project's database."),
    "migrate": ("whirr.cli.migrate", "migrate_cmd", "Convert a whirr 0.5.3 project to this whirr."),
    "sweep": ("whirr.cli.sweep", "sweep_cmd", "Run a parameter sweep (YAML); report on one."),
    "sweeps": ("whirr.cli.sweep", "sweeps_cmd", "List sweeps with their progress."),
    "ablate": ("whirr.cli.ablate", "ablate_cmd", "Ablation studies with paired seeds."),
    "watch": ("whirr.cli.watch", "watch_cmd", "Live full-screen view of jobs and workers."),
    "server": ("whirr.cli.server", "server_cmd", "Serve the HTTP API for remote workers."),
    "dashboard": ("whirr.cli.dashboard", "dashboard_cmd", "Web UI: queue, runs, live charts."),
    "token": ("whirr.cli.tokens", "token_cmd", "Create, list, revoke the server's API tokens."),
}


class LazyGroup(click.Group):
    """A group that imports a subcommand's module only when that command runs."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(COMMANDS)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        entry = COMMANDS.get(cmd_name)
        if entry is None:
            return None
        module, attr, _ = entry
        command: click.Command = getattr(importlib.import_module(module), attr)
        if not gc.isenabled():  # off while starting up (see ``whirr.cli:main``)
            # Everything allocated so far lives as long as the process: freezing it keeps
            # the first collection from walking all of it (~10 ms), then collect as usual.
            gc.freeze()
            gc.enable()
        return command

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        check_utf8(args)
        return super().parse_args(ctx, args)

    def invoke(self, ctx: click.Context) -> Any:
        """Run the command; an exception no command turned into ``Error: ...`` becomes
        one line and exit 1 all the same (``WHIRR_TRACEBACK=1`` shows the traceback)."""
        try:
            return super().invoke(ctx)
        except (click.exceptions.ClickException, click.exceptions.Abort, click.exceptions.Exit):
            raise
        except BrokenPipeError:  # output piped into `head`: stop quietly
            sys.stderr.close()
            ctx.exit(0)
        except Exception as exc:
            if os.environ.get("WHIRR_TRACEBACK"):
                raise
            from whirr.cli.extras import missing_extra

            # An optional library the command needs: name the extra to install.
            message = missing_extra(ctx.invoked_subcommand, exc)
            message = message or f"internal error: {one_line(exc)} (please report)"
            click.echo(f"Error: {message}", err=True)
            ctx.exit(1)

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        rows = [(name, COMMANDS[name][2]) for name in self.list_commands(ctx)]
        with formatter.section("Commands"):
            formatter.write_dl(rows)


def check_utf8(args: list[str]) -> None:
    """Refuse an argument that is not UTF-8 text (Python hands such bytes over as lone
    surrogates) or holds a NUL: nothing whirr records, opens or prints could hold it."""
    for i, arg in enumerate(args):
        try:
            arg.encode("utf-8")
            problem = "holds a NUL character" if "\x00" in arg else ""
        except UnicodeEncodeError:
            problem = "is not valid UTF-8 text"
        if problem:
            after = f" (the value of {args[i - 1]})" if i and args[i - 1].startswith("-") else ""
            shown = arg.encode("utf-8", "surrogateescape").decode("ascii", "backslashreplace")
            shown = shown.replace("\x00", "\\x00")
            raise click.ClickException(f"argument {i + 1}{after} {problem}: '{shown[:80]}'")


def one_line(exc: BaseException) -> str:
    """``Type: message`` on one line, at most 300 characters."""
    text = " ".join(f"{type(exc).__name__}: {exc}".split())
    return text if len(text) <= 300 else text[:297] + "..."


def help_width() -> int:
    """The width click gives help text (terminal columns, at most 80, less 2; at least 50),
    found the way ``shutil.get_terminal_size`` does: click imports shutil for it, and
    with it bz2 and lzma, a noticeable part of ``whirr --help``."""
    try:
        columns = int(os.environ.get("COLUMNS", "0"))
    except ValueError:
        columns = 0
    if columns <= 0:
        try:
            columns = os.get_terminal_size(sys.__stdout__.fileno()).columns  # type: ignore[union-attr]
        except (AttributeError, ValueError, OSError):
            columns = 0
    return max(min(columns if columns > 0 else 80, 80) - 2, 50)


@click.group(
    cls=LazyGroup,
    context_settings={
        "help_option_names": ["-h", "--help"],
        "auto_envvar_prefix": "WHIRR",
        "terminal_width": help_width(),
    },
    invoke_without_command=True,
)
@click.version_option(package_name="whirr", prog_name="whirr")
@click.pass_context
def cli(ctx: click.Context) -> None:
    """whirr: queue experiments, run them on workers, track metrics, compare runs.

    \b
    Start here:
      whirr init                       make the current directory a project
      whirr submit -- python train.py  queue a job
      whirr worker                     run queued jobs
      whirr status / whirr runs        see what happened
    """
    if ctx.invoked_subcommand is None:
        click.echo(ctx.get_help())


def main() -> None:
    """Console-script entry point."""
    cli(prog_name="whirr")


if __name__ == "__main__":  # pragma: no cover
    main()
