"""``whirr runs`` and ``whirr show``: runs from the store's view, metrics from the tail of
each run's file (never the whole file, never one file per listed run)."""

from __future__ import annotations

import warnings
from datetime import UTC, datetime
from typing import Any

import click
import msgspec

from whirr.cli.common import (
    StatusChoice,
    ago,
    count,
    duration,
    emit_json,
    print_table,
    server_option,
    user_errors,
)
from whirr.cli.run_manage import MANAGE_COMMANDS
from whirr.cli.usage import size_warning_line, usage_line
from whirr.clock import local_time
from whirr.facade import Whirr, open_whirr
from whirr.facade.where import files_location
from whirr.services.errors import NotFound
from whirr.wire import schemas
from whirr.wire.files_location import FilesLocation
from whirr.wire.run_manage import ArchivedFilter

STATUSES = ["running", "completed", "failed", "cancelled", "timed_out", "killed", "crashed"]
#: Summary values shown in the runs table, at most.
_SUMMARY_SHOWN = 3
#: Metric rows ``show`` reads from the end of a run's file for its last values.
_SHOW_TAIL = 1000


@click.group("runs", invoke_without_command=True)
@click.option("-s", "--status", type=StatusChoice(STATUSES), help="Only runs with this status.")
@click.option("-t", "--tag", help="Only runs with this tag.")
@click.option(
    "-n",
    "--limit",
    type=count(),
    default=20,
    show_default=True,
    help="How many runs (newest first).",
)
@click.option(
    "-w",
    "--where",
    multiple=True,
    help="Only runs where this SQL condition holds, e.g. 'config.lr < 0.01' "
    "(repeatable; all must hold).",
)
@click.option(
    "--sort",
    multiple=True,
    help="Order by this value, e.g. summary.best_loss; -KEY or 'KEY desc' for "
    "descending (repeatable).",
)
@click.option("--json", "as_json", is_flag=True, help="Print {runs: [...]} as JSON.")
@click.option("--archived", is_flag=True, help="Only archived runs (`whirr runs archive`).")
@click.option("--all", "all_runs", is_flag=True, help="Every run, archived ones too.")
# The original whirr's spelling of -n (docs/cli.md, "The original whirr's options").
@click.option("--last", type=count(), default=None, hidden=True)
@server_option(short=False)
@click.pass_context
@user_errors
def runs_cmd(
    ctx: click.Context,
    status: str | None,
    tag: str | None,
    limit: int,
    where: tuple[str, ...],
    sort: tuple[str, ...],
    as_json: bool,
    archived: bool,
    all_runs: bool,
    last: int | None,
    server: str | None,
) -> None:
    """List runs, newest first, with full ids; or manage one (the commands below).

    Direct runs (a script calling whirr.init()) show as soon as they start; one whose
    process died without recording an end shows as `crashed`.

    \b
    Examples:
      whirr runs                  # the 20 newest runs
      whirr runs -s failed -n 5
      whirr runs -t sweep:lr --json
      whirr runs --where 'config.lr < 0.01' --sort summary.best_loss
      whirr runs --archived           # archived runs only (--all: every run)
      whirr runs tag job-12 best      # manage: rename, tag, untag, note, archive, delete
    """
    if ctx.invoked_subcommand is not None:
        return  # ``whirr runs rename ...``: the subcommand does the work
    limit = last if last is not None else limit
    which: ArchivedFilter = "include" if all_runs else "only" if archived else "exclude"
    with open_whirr(server) as whirr:
        runs = whirr.runs(
            status=status, tag=tag, limit=None if where or sort else limit, archived=which
        )
        # Nothing to list but archived runs: say so, rather than "No runs." alone.
        hidden = not runs and which == "exclude" and not as_json
        hidden = hidden and bool(whirr.runs(status=status, tag=tag, limit=1, archived="only"))
    if where or sort:
        from whirr.analytics.filters import filter_runs  # DuckDB: imported only when asked

        runs = filter_runs(runs, where, sort, limit)
    if as_json:
        emit_json({"runs": runs})
        return
    print_runs(runs, status, tag)
    if hidden and not runs:
        click.echo("(archived runs are hidden: whirr runs --archived lists them)")


for _command in MANAGE_COMMANDS:
    runs_cmd.add_command(_command)


def print_runs(runs: list[schemas.Run], status: str | None, tag: str | None) -> None:
    """The ``whirr runs`` table."""
    if not runs:
        click.echo(
            "No runs"
            + (f" with status {status}" if status else "")
            + (f" tagged {tag}" if tag else "")
            + "."
        )
        return
    now = datetime.now(UTC)
    rows = []
    for r in runs:
        took = r.duration_seconds
        if took is None and r.status == "running":
            took = (now - r.started_at).total_seconds()
        rows.append(
            [
                r.id,
                r.name or "-",
                r.status + (" (archived)" if r.archived else ""),
                ago(r.started_at, now),
                duration(took),
                ",".join(r.tags) or "-",
                _short_summary(r.summary),
            ]
        )
    print_table(["ID", "NAME", "STATUS", "STARTED", "DURATION", "TAGS", "SUMMARY"], rows)


@click.command("show")
@click.argument("run_id")
@click.option("--json", "as_json", is_flag=True, help="Print the run (and last metrics) as JSON.")
@server_option()
@user_errors
def show_cmd(run_id: str, as_json: bool, server: str | None) -> None:
    """Show one run: status, config, summary, last metrics, git, artifacts.

    RUN_ID is a full id, any prefix that only one run has, or its job (12, #12, job-12).

    \b
    Examples:
      whirr show job-12
      whirr show 12                    # the run of job 12
      whirr show local-20250101-0930   # a unique prefix is enough
      whirr show job-12 --json
    """
    from whirr.services.run_files import SkippedLine

    with open_whirr(server) as whirr, warnings.catch_warnings(record=True) as skipped:
        warnings.simplefilter("always", SkippedLine)
        run = whirr.run(run_id)
        location = files_location(whirr, run)
        rows = whirr.tail(run.id, "metrics", _SHOW_TAIL)
        samples = whirr.tail(run.id, "system", 1)
        artifacts = whirr.artifacts(run.id)
        usage = _job_usage(whirr, run)
    for warning in skipped:  # a damaged line of the run's files: said, never hidden
        click.echo(f"Warning: {warning.message}", err=True)
    latest = latest_values(rows)
    system = samples[-1] if samples else {}
    if as_json:
        emit_json(
            {
                **msgspec.to_builtins(run),
                "files": artifacts,
                "files_location": location,
                "last_metrics": latest,
                "metrics_rows": rows[-1]["_idx"] + 1 if rows and "_idx" in rows[-1] else 0,
                "last_system": system,
                "usage": None if usage is None else msgspec.to_builtins(usage),
            }
        )
        return
    _print_run(run, location, latest, rows, artifacts, usage)
    if system:
        _section(f"System (sampled {system.pop('_timestamp', '?')})", system)


def _job_usage(whirr: Whirr, run: schemas.Run) -> schemas.JobUsage | None:
    """What the run's job used, where its worker accounted it (a direct run: None)."""
    if run.job_id is None:
        return None
    try:
        return whirr.job(run.job_id).usage
    except NotFound:
        return None


def latest_values(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """The newest value of each metric key (and its step) among ``rows``."""
    latest: dict[str, Any] = {}
    for row in rows:
        for key, value in row.items():
            if key not in ("_idx", "_timestamp"):
                latest[key] = value
    return latest


def _dirty_note(git: dict[str, Any], location: FilesLocation) -> str:
    """What is known of a dirty checkout's changes: diff.patch only when the run has one
    (the diff leaves out untracked files; a checkout with no commit has no diff)."""
    if "diff.patch" in location.files:
        return " (dirty: see diff.patch)"
    if not git.get("commit"):
        return " (dirty: no commit yet, so no diff.patch was saved)"
    return " (dirty, but no diff.patch was saved: a diff leaves out untracked files)"


def _print_run(
    run: schemas.Run,
    location: FilesLocation,
    latest: dict[str, Any],
    rows: list[dict[str, Any]],
    files: list[schemas.ArtifactOut],
    usage: schemas.JobUsage | None = None,
) -> None:
    took = run.duration_seconds
    if took is None and run.status == "running":
        took = (datetime.now(UTC) - run.started_at).total_seconds()
    fields = [
        ("Run", run.id),
        ("Name", run.name or "-"),
        ("Status", run.status + (f" (exit {run.exit_code})" if run.exit_code is not None else "")),
        ("Job", f"#{run.job_id}" if run.job_id is not None else "- (direct run)"),
        ("Started", f"{local_time(run.started_at)} ({ago(run.started_at)})"),
        ("Finished", local_time(run.finished_at)),
        ("Duration", duration(took)),
        *([("Used", usage_line(usage))] if usage is not None else []),
        ("Host", f"{run.hostname or '-'}" + (f" (pid {run.pid})" if run.pid else "")),
        ("Tags", ", ".join(run.tags) or "-"),
        *([("Archived", "yes (hidden from `whirr runs`)")] if run.archived else []),
        ("Files", location.line),
    ]
    fields.extend(("Warning", warning) for warning in location.warnings)
    if run.size_warning is not None:
        fields.append(("Warning", size_warning_line(run.size_warning)))
    if run.error:
        fields.append(("Error", run.error))
    width = max(len(k) for k, _ in fields)
    for key, value in fields:
        click.echo(f"{key + ':':<{width + 1}} {value}")
    if run.notes:
        click.echo("\nNote:")
        for line in run.notes.splitlines():
            click.echo(f"  {line}" if line else "")
    _section("Config", run.config)
    _section("Summary", run.summary)
    count = rows[-1].get("_idx", -1) + 1 if rows else 0
    _section(f"Last metrics ({count} rows)" if rows else "Last metrics", latest)
    git = run.git
    if git:
        dirty = _dirty_note(git, location) if git.get("dirty") else ""
        _section(
            "Git",
            {
                "commit": f"{git.get('commit') or '-'}{dirty}",
                "branch": git.get("branch") or "-",
                "remote": git.get("remote") or "-",
            },
        )
    else:
        _section("Git", {})
    click.echo("\nArtifacts:")
    if not files:
        click.echo("  (none)")
    for art in files:
        click.echo(f"  {art.path}  {_size(art.size)}")


def _section(title: str, values: dict[str, Any]) -> None:
    click.echo(f"\n{title}:")
    if not values:
        click.echo("  (none)")
        return
    width = max(len(str(k)) for k in values)
    for key, value in values.items():
        click.echo(f"  {key!s:<{width}}  {_fmt(value)}")


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.6g}"
    if value is None:
        return "null"
    return str(value)


def _short_summary(summary: dict[str, Any]) -> str:
    if not summary:
        return "-"
    shown = [f"{k}={_fmt(v)}" for k, v in list(summary.items())[:_SUMMARY_SHOWN]]
    more = len(summary) - _SUMMARY_SHOWN
    return " ".join(shown) + (f" (+{more})" if more > 0 else "")


def _size(n: int) -> str:
    size = float(n)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if size < 1024 or unit == "GiB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{n} B"
