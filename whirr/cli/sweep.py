"""``whirr sweep FILE`` (and ``sweep status|resume|cancel``) and ``whirr sweeps``."""

from __future__ import annotations

import os
import shlex
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import click

from whirr.cli.common import emit_json, local_time, print_table, project_store, user_errors
from whirr.cli.remote import server_option
from whirr.cli.study_options import collect_submit_options, submit_option_flags


@contextmanager
def _sweeps(server: str | None) -> Iterator[Any]:
    """The sweep operations of the local project, or of ``server`` (same methods)."""
    if server:
        from whirr.cli.remote import client
        from whirr.sweeps.remote import RemoteSweeps

        with client(server) as c:
            yield RemoteSweeps(c)
        return
    from whirr.sweeps.service import Sweeps

    with project_store() as (_, store):
        yield Sweeps(store)


class SweepGroup(click.Group):
    """``whirr sweep FILE`` runs a sweep; ``whirr sweep status NAME`` etc. are subcommands.

    Anything that is not a subcommand name is taken as ``run``'s arguments."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        if args and args[0] not in self.commands and args[0] not in ("-h", "--help"):
            args = ["run", *args]
        return super().parse_args(ctx, args)


@click.group("sweep", cls=SweepGroup)
def sweep_cmd() -> None:
    """Run a parameter sweep from a YAML file, or report on one.

    \b
    Examples:
      whirr sweep sweep.yaml              queue every job of the sweep
      whirr sweep -n sweep.yaml           dry run: print the jobs, queue nothing
      whirr sweep status lr-sweep -m val_loss
      whirr sweeps                        every sweep with its progress
      whirr sweep sweep.yaml -s http://head-node:8080   queue it on a server

    With -s/--server (or WHIRR_SERVER_URL) the sweep is recorded and its jobs
    queued on that server, where any machine sees it. See docs/sweeps.md for
    the file format.
    """


@sweep_cmd.command("run")
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
@click.option(
    "-p",
    "--prefix",
    help="Name of the sweep and its jobs (default: `name` in the file, else the file's name).",
)
@click.option("-n", "--dry-run", is_flag=True, help="Print the jobs; queue nothing.")
@click.option(
    "--seed",
    type=click.IntRange(min=0),
    default=None,
    help="Seed of a random sweep (default: `seed` in the file, else a new one, "
    "which is printed and recorded).",
)
@submit_option_flags
@click.option("--json", "as_json", is_flag=True, help="Print the sweep's jobs as JSON.")
@server_option()
@user_errors
def run_cmd(
    file: Path,
    prefix: str | None,
    dry_run: bool,
    seed: int | None,
    as_json: bool,
    server: str | None,
) -> None:
    """Queue one job per point of the sweep in FILE.

    Each job runs `program --key value ...`, is named <name>-<i>, is tagged
    sweep:<name>, and has the point as its config.

    \b
    Examples:
      whirr sweep sweep.yaml
      whirr sweep sweep.yaml -p lr-v2 --priority 5
      whirr sweep sweep.yaml --seed 7 -n
      whirr sweep sweep.yaml --server http://head-node:8080
    """
    from whirr.studies.linking import submit_option_names
    from whirr.sweeps import expand
    from whirr.sweeps.service import Sweeps, new_seed
    from whirr.sweeps.spec import NAME_PATTERN, SweepFileError, parse_spec

    try:
        text = file.read_text(encoding="utf-8")
    except OSError as exc:
        raise SweepFileError(f"cannot read {file}: {exc.strerror}") from None
    spec = parse_spec(text, source=str(file), submit_options=submit_option_names())
    name = prefix or spec.name or file.stem
    if not NAME_PATTERN.fullmatch(name):
        raise click.BadParameter(
            f"{name!r} is not a usable sweep name (letters, digits, '.', '_', '-')",
            param_hint="'-p/--prefix'",
        )
    submit_options = collect_submit_options()
    if spec.method == "random" and seed is None:
        seed = spec.seed if spec.seed is not None else new_seed()
    if dry_run:
        planned = expand.plan(spec, name, seed)
        if as_json:
            emit_json({"sweep": name, "seed": seed, "jobs": planned})
            return
        print_table(
            ["#", "NAME", "COMMAND"], [[str(j.index), j.name, shlex.join(j.argv)] for j in planned]
        )
        seeded = f", seed {seed}" if seed is not None else ""
        click.echo(
            f"\nDry run: {len(planned)} job(s) of sweep {name} ({spec.method}{seeded}); "
            "nothing queued."
        )
        return
    if server:
        # The server parses the file again (it records the sweep) and applies its own
        # max_attempts default; the workers run the jobs in this directory.
        with _sweeps(server) as remote:
            record, jobs = remote.create(
                text, name, os.getcwd(), seed=seed, source=str(file), options=submit_options
            )
    else:
        with project_store() as (project, store):
            submit_options.setdefault("max_attempts", project.config.max_attempts)
            record, jobs = Sweeps(store).create(
                spec, name, os.getcwd(), seed=seed, source=str(file), options=submit_options
            )
    if as_json:
        emit_json(
            {
                "sweep": name,
                "seed": record.created.seed,
                "jobs": [
                    {"index": m.index, "job_id": m.job_id, "config": m.config}
                    for m in record.members
                ],
            }
        )
        return
    ids = [j.id for j in jobs]
    span = f"#{ids[0]}-#{ids[-1]}" if len(ids) > 1 else f"#{ids[0]}"
    seeded = f", seed {record.created.seed}" if record.created.seed is not None else ""
    click.echo(f"Sweep {name}: queued {len(ids)} job(s) {span} ({spec.method}{seeded})")
    click.echo(f"Progress: whirr sweep status {name}")


@sweep_cmd.command("status")
@click.argument("name")
@click.option("-m", "--metric", help="Rank runs by this metric (default: `metric` in the file).")
@click.option("--max", "goal", flag_value="maximize", help="Higher is better.")
@click.option("--min", "goal", flag_value="minimize", help="Lower is better (the default).")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@server_option()
@user_errors
def status_cmd(
    name: str, metric: str | None, goal: str | None, as_json: bool, server: str | None
) -> None:
    """Show a sweep's progress, its jobs and the best run so far on a metric.

    A run's value is its summary[METRIC] if set, else the last METRIC it logged.

    \b
    Examples:
      whirr sweep status lr-sweep
      whirr sweep status lr-sweep -m accuracy --max
      whirr sweep status lr-sweep --server http://head-node:8080
    """
    with _sweeps(server) as sweeps:
        report = sweeps.report(name, metric, goal)
    if as_json:
        emit_json(_report_json(report))
        return
    created, progress = report.record.created, report.progress
    seeded = f", seed {created.seed}" if created.seed is not None else ""
    click.echo(
        f"Sweep {created.sweep}: {created.method}{seeded}, {progress.planned} job(s), "
        f"created {local_time(report.record.created_at)}"
    )
    click.echo(f"Program: {created.program}")
    click.echo(
        f"Progress: {progress.finished}/{progress.planned} finished - "
        f"{progress.queued} queued, {progress.running} running, {progress.done} done, "
        f"{progress.failed} failed, {progress.cancelled} cancelled"
        + (
            " (incomplete: `whirr sweep resume` queues the rest)"
            if progress.state == "incomplete"
            else ""
        )
    )
    keys = list(created.parameters)
    headers = ["#", "JOB", "STATUS", *keys] + ([report.metric.upper()] if report.metric else [])
    rows = []
    for row in report.rows:
        value = [] if not report.metric else ["-" if row.value is None else f"{row.value:.6g}"]
        mark = " *" if report.best is not None and row.member == report.best.member else ""
        rows.append(
            [
                str(row.member.index),
                f"#{row.member.job_id}",
                row.job.status if row.job else "?",
                *[_cell(row.member.config.get(k)) for k in keys],
                *value,
            ]
        )
        rows[-1][-1] += mark
    click.echo("")
    print_table(headers, rows)
    click.echo("")
    if report.metric is None:
        click.echo("Give -m METRIC to find the best run.")
    elif report.best is None:
        click.echo(f"No run has reported {report.metric} yet.")
    else:
        best = report.best
        assert best.value is not None
        config = " ".join(f"{k}={_cell(v)}" for k, v in best.member.config.items())
        run = best.job.run_id if best.job else "?"
        click.echo(
            f"Best {report.metric} ({report.goal}): {best.value:.6g} - "
            f"{created.sweep}-{best.member.index} (job #{best.member.job_id}, run {run})"
        )
        click.echo(f"  {config}")


@sweep_cmd.command("resume")
@click.argument("name")
@server_option()
@user_errors
def resume_cmd(name: str, server: str | None) -> None:
    """Queue the jobs of an interrupted sweep that were never queued."""
    with _sweeps(server) as sweeps:
        _, jobs = sweeps.resume(name)
    click.echo(
        f"Sweep {name}: queued {len(jobs)} more job(s)"
        if jobs
        else f"Sweep {name}: every job was already queued"
    )


@sweep_cmd.command("cancel")
@click.argument("name")
@server_option()
@user_errors
def cancel_cmd(name: str, server: str | None) -> None:
    """Cancel a sweep's queued and running jobs."""
    with _sweeps(server) as sweeps:
        ids = sweeps.cancel(name)
    click.echo(f"Sweep {name}: cancelled {len(ids)} job(s)")


@click.command("sweeps")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@server_option()
@user_errors
def sweeps_cmd(as_json: bool, server: str | None) -> None:
    """List sweeps with their progress (queued/running/done/failed).

    \b
    Examples:
      whirr sweeps
      whirr sweeps --json
      whirr sweeps --server http://head-node:8080
    """
    with _sweeps(server) as sweeps:
        listed = sweeps.overview()
    if as_json:
        emit_json(
            {
                "sweeps": [
                    {
                        "name": r.name,
                        "method": r.created.method,
                        "created_at": r.created_at,
                        "metric": r.created.metric,
                        "seed": r.created.seed,
                        "state": p.state,
                        "progress": p,
                    }
                    for r, p in listed
                ]
            }
        )
        return
    if not listed:
        click.echo("No sweeps yet. Start one with `whirr sweep FILE`.")
        return
    print_table(
        [
            "NAME",
            "METHOD",
            "JOBS",
            "QUEUED",
            "RUNNING",
            "DONE",
            "FAILED",
            "CANCELLED",
            "STATE",
            "CREATED",
        ],
        [
            [
                r.name,
                r.created.method,
                f"{p.submitted}/{p.planned}",
                str(p.queued),
                str(p.running),
                str(p.done),
                str(p.failed),
                str(p.cancelled),
                p.state,
                local_time(r.created_at),
            ]
            for r, p in listed
        ],
    )


def _cell(value: Any) -> str:
    from whirr.sweeps.expand import format_value

    return "-" if value is None else format_value(value)


def _report_json(report: Any) -> dict[str, Any]:
    def row(r: Any) -> dict[str, Any]:
        return {
            "index": r.member.index,
            "job_id": r.member.job_id,
            "status": r.job.status if r.job else None,
            "run_id": r.job.run_id if r.job else None,
            "config": r.member.config,
            "value": r.value,
        }

    return {
        "name": report.record.name,
        "sweep": report.record.created,
        "created_at": report.record.created_at,
        "state": report.progress.state,
        "progress": report.progress,
        "metric": report.metric,
        "goal": report.goal,
        "jobs": [row(r) for r in report.rows],
        "best": row(report.best) if report.best else None,
    }
