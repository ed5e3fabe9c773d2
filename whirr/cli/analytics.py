"""``whirr compare``, ``whirr export`` and ``whirr sql``: thin skins over
``whirr.analytics`` (which imports DuckDB only when one of them runs). Each reads the
project or the server ``open_whirr`` picks; a server's run files are copied into the
user's cache, only what was added since the last command (``whirr.facade.mirror``)."""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

import click

from whirr.cli.common import StatusChoice, count, fail, server_option, user_errors
from whirr.cli.runs import STATUSES as RUN_STATUSES
from whirr.facade import Whirr, open_whirr
from whirr.services.errors import NotFound

_EXPORT_FORMATS = ["csv", "json", "jsonl", "parquet"]


def _split(values: tuple[str, ...]) -> list[str]:
    """Repeatable options that also take comma-separated lists (``-m loss,acc``)."""
    return [part.strip() for value in values for part in value.split(",") if part.strip()]


@click.command("compare")
@click.argument("runs", nargs=-1)
@click.option("-t", "--tag", "tags", multiple=True, help="Compare the runs with this tag too.")
@click.option(
    "-m",
    "--metric",
    "metrics",
    multiple=True,
    help="Metric to compare (repeat or comma-separate); default: every numeric one.",
)
@click.option(
    "--at",
    default="last",
    show_default=True,
    help="Which value of each metric: last, min, max or step=N.",
)
@click.option(
    "--goal",
    "goals",
    multiple=True,
    help="min or max for every row, or NAME=min|max for one (default: min for "
    "loss/error-like names, max otherwise).",
)
@click.option(
    "-o",
    "--output",
    type=click.Choice(["table", "csv", "json"]),
    default="table",
    show_default=True,
    help="Output format.",
)
@click.option("--json", "as_json", is_flag=True, help="Same as -o json.")
# The original whirr's spellings (docs/cli.md, "The original whirr's options"): its
# --metrics switched the metric rows on (they always are here); --no-config drops the
# config rows.
@click.option("--metrics", "_original_metrics", is_flag=True, hidden=True)
@click.option("--config/--no-config", "with_config", default=True, hidden=True)
@server_option()
@user_errors
def compare_cmd(
    runs: tuple[str, ...],
    tags: tuple[str, ...],
    metrics: tuple[str, ...],
    at: str,
    goals: tuple[str, ...],
    output: str,
    as_json: bool,
    _original_metrics: bool,
    with_config: bool,
    server: str | None,
) -> None:
    """Compare runs side by side: status, duration, config, summary and metrics.

    RUNS are full ids, prefixes only one run has, or jobs (12, #12, job-12); -t TAG adds
    every run with that tag (oldest first). Config keys that differ between the runs come
    first, marked ≠; the best value of each summary and metric row is marked *. The table
    fits the terminal's width (COLUMNS): runs that do not fit go into further blocks.

    \b
    Examples:
      whirr compare job-1 job-2 job-3
      whirr compare -t sweep:lr -m loss
      whirr compare job-1 job-2 -m loss -m acc --at min
      whirr compare job-1 job-2 -m loss --at step=1000 -o csv
      whirr compare job-1 job-2 -m reward --goal reward=min --json
    """
    from whirr.analytics.compare import compare_runs
    from whirr.analytics.report import comparison_csv, comparison_json, comparison_table

    if not runs and not tags:
        raise click.UsageError("name the runs to compare, or give -t TAG")
    with open_whirr(server) as whirr:
        refs = [*runs, *_tagged(whirr, tags)]
        comparison = compare_runs(whirr, list(dict.fromkeys(refs)), _split(metrics), at, goals)
    if not with_config:
        comparison.rows = [row for row in comparison.rows if row.section != "config"]
    output = "json" if as_json else output
    if output == "json":
        click.echo(comparison_json(comparison))
    elif output == "csv":
        click.echo(comparison_csv(comparison), nl=False)
    else:
        click.echo(comparison_table(comparison, _terminal_width()))


def _tagged(whirr: Whirr, tags: tuple[str, ...]) -> list[str]:
    """The ids of the runs with each tag, oldest first (an Error for a tag none has)."""
    ids = []
    for tag in tags:
        found = whirr.runs(tag=tag, limit=None)
        if not found:
            fail(f"no run has tag {tag!r} (see `whirr runs`)")
        ids += [run.id for run in reversed(found)]
    return ids


def _terminal_width() -> int | None:
    """Columns to fit a table in: COLUMNS, else the terminal's; None when stdout is no
    terminal (a file or a pipe takes whole lines)."""
    if os.environ.get("COLUMNS", "").strip().isdigit() or sys.stdout.isatty():
        return max(20, shutil.get_terminal_size().columns)
    return None


@click.command("export")
@click.argument("runs", nargs=-1)
@click.option("-s", "--status", type=StatusChoice(RUN_STATUSES), help="Only runs with this status.")
@click.option("-t", "--tag", help="Only runs with this tag.")
@click.option(
    "--metrics",
    "with_metrics",
    is_flag=True,
    help="Export every logged metric row instead of one row per run.",
)
@click.option(
    "--wide",
    is_flag=True,
    help="With --metrics: one column per metric instead of (metric, value) rows.",
)
@click.option(
    "-m",
    "--metric",
    "metric_keys",
    multiple=True,
    help="With --metrics: only these metrics (repeat or comma-separate).",
)
@click.option(
    "-f",
    "--format",
    "fmt",
    type=click.Choice(_EXPORT_FORMATS),
    help="Output format (default: from the -o suffix, else csv).",
)
@click.option(
    "-o",
    "--output",
    "path",
    type=click.Path(dir_okay=False),
    help="File to write (default: stdout).",
)
# The original whirr's spellings (docs/cli.md, "The original whirr's options").
@click.option("-r", "--run", "original_runs", multiple=True, hidden=True)
@click.option("-l", "--limit", type=count(), default=None, hidden=True)
@server_option(short=False)
@user_errors
def export_cmd(
    runs: tuple[str, ...],
    status: str | None,
    tag: str | None,
    with_metrics: bool,
    wide: bool,
    metric_keys: tuple[str, ...],
    fmt: str | None,
    path: str | None,
    original_runs: tuple[str, ...],
    limit: int | None,
    server: str | None,
) -> None:
    """Export runs (config.* and summary.* flattened into columns) or their metrics.

    RUNS are ids or unique prefixes; none means every run (newest first), narrowed by
    --status and --tag. The original form `whirr export OUTPUT.csv` also works.

    \b
    Examples:
      whirr export -o runs.csv                     # every run, one row each
      whirr export runs.json                       # the original form
      whirr export -s completed -t sweep:lr -f parquet -o sweep.parquet
      whirr export job-12 --metrics > job-12.csv   # run_id,_idx,_timestamp,step,metric,value
      whirr export job-12 job-13 --metrics --wide -m loss,acc -o curves.parquet
    """
    from whirr.analytics.export import SUFFIXES, export_metrics, export_runs, format_for
    from whirr.analytics.selection import select_runs
    from whirr.analytics.session import Session

    if (wide or metric_keys) and not with_metrics:
        raise click.UsageError("--wide and -m go with --metrics")
    refs = list(runs)
    with open_whirr(server) as whirr, Session(whirr) as session:
        if path is None and refs and _is_output(whirr, refs[-1], SUFFIXES):
            path = refs.pop()  # `whirr export OUTPUT.csv`: the original form
        elif path is None and refs and _is_unknown_output(whirr, refs[-1]):
            known = ", ".join(SUFFIXES)
            fail(
                f"unknown export format {Path(refs[-1]).suffix!r} ({refs[-1]}): name the "
                f"file {known}, or give -f {'/'.join(_EXPORT_FORMATS)} with -o FILE"
            )
        fmt = format_for(path, fmt)
        if path is None and fmt == "parquet" and sys.stdout.isatty():
            fail("Parquet is binary: give -o FILE or redirect stdout")
        chosen = select_runs(whirr, refs, status, tag)
        if original_runs:  # the original's --run: every run whose id starts so
            chosen = [r for r in chosen if r.id.startswith(original_runs)]
            if not chosen:
                fail(f"no run starts with {' or '.join(original_runs)}")
        if limit is not None:
            chosen = chosen[:limit]  # newest first
        target = Path(path) if path else session.tmpdir / f"export.{fmt}"
        if with_metrics:
            count = export_metrics(session, chosen, fmt, target, wide, _split(metric_keys))
            what = "metric rows"
        else:
            count = export_runs(session, chosen, fmt, target)
            what = "runs"
        if path is None:
            out = sys.stdout.buffer
            with open(target, "rb") as fh:
                while chunk := fh.read(1 << 20):
                    out.write(chunk)
            out.flush()
            return
    click.echo(f"Wrote {count} {what} to {path}", err=True)


def _is_output(whirr: Whirr, arg: str, suffixes: dict[str, str]) -> bool:
    """Whether a last argument like ``runs.csv`` is an output file, not a run id."""
    if Path(arg).suffix.lower() not in suffixes:
        return False
    if "/" in arg or "\\" in arg:
        return True  # a path: no run id has a separator
    try:
        whirr.run(arg)
    except NotFound:
        return True
    return False


def _is_unknown_output(whirr: Whirr, arg: str) -> bool:
    """Whether a last argument like ``out.xlsx`` meant an output file of a format export
    does not write (rather than a run id no run has): "no run matches" would mislead."""
    suffix = Path(arg).suffix
    if not suffix[1:].isalnum() or suffix[1:].isdigit():
        return False  # no suffix, or a run-id-like tail (``.1``)
    try:
        whirr.run(arg)
    except NotFound:
        return True
    return False


@click.command("sql")
@click.argument("query")
@click.option(
    "-o",
    "--output",
    type=click.Choice(["table", "csv", "json", "jsonl"]),
    default="table",
    show_default=True,
    help="Output format.",
)
@click.option("--json", "as_json", is_flag=True, help="Same as -o json.")
@server_option()
@user_errors
def sql_cmd(query: str, output: str, as_json: bool, server: str | None) -> None:
    """Query runs, jobs and metrics with DuckDB SQL (read-only; `-` reads the query
    from stdin).

    \b
    Views:
      runs     id, name, job_id, status, tags, hostname, pid, started_at, finished_at,
               duration_seconds, exit_code, error, run_dir, config, summary, git
               (config and summary are structs: config.lr, summary.best_loss)
      jobs     id, name, status, command_argv, workdir, tags, run_id, attempt, worker_id,
               created_at, started_at, finished_at, exit_code, error, config, ...
      metrics  run_id, _idx, _timestamp, step, then one column per logged key
      system   run_id, _timestamp, cpu_percent, memory_used_gb, gpu_util, ...

    \b
    Examples:
      whirr sql "SELECT id, config.lr, summary.best_loss FROM runs ORDER BY 3 LIMIT 5"
      whirr sql "SELECT run_id, min(loss) FROM metrics GROUP BY run_id" -o csv
      whirr sql "SELECT r.name, max(m.acc) FROM runs r JOIN metrics m ON m.run_id = r.id
                 WHERE r.status = 'completed' GROUP BY ALL" --json
    """
    from whirr.analytics.query import run_sql
    from whirr.analytics.render import csv_text, json_text, records, table_text, text

    if query == "-":
        query = sys.stdin.read()
    with open_whirr(server) as whirr:
        result = run_sql(whirr, query)
    output = "json" if as_json else output
    if output == "json":
        click.echo(json_text(records(result.columns, result.rows)))
    elif output == "jsonl":
        for record in records(result.columns, result.rows):
            click.echo(json_text(record))
    elif output == "csv":
        click.echo(csv_text(result.columns, result.rows), nl=False)
    else:
        rows = [[("NULL" if v is None else text(v)) for v in row] for row in result.rows]
        click.echo(table_text(result.columns, rows))
        click.echo(f"({len(rows)} row{'' if len(rows) == 1 else 's'})")
