"""``whirr sweep FILE`` (and ``sweep status|resume|cancel``) and ``whirr sweeps``."""

from __future__ import annotations

import os
import shlex
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from whirr.cli.common import count, emit_json, print_table, server_option, user_errors
from whirr.cli.study_options import collect_submit_options, submit_option_flags, type_error
from whirr.clock import local_time
from whirr.facade import Whirr, open_whirr
from whirr.services.errors import NotFound

if TYPE_CHECKING:
    from whirr.sweeps import PlannedJob, SweepSpec
    from whirr.wire.studies import SweepOut, SweepReportOut


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
    type=count(0),
    default=None,
    help="Seed of a random or bayes sweep (default: `seed` in the file, else a new one, "
    "which is printed and recorded); a bayes sweep proposes the same points given the "
    "same seed and the same order of ends.",
)
@click.option(
    "--check",
    is_flag=True,
    help="Run `program --help` once (in this directory) and refuse flags the sweep would "
    "pass that it does not list (--batch_size for --batch-size); with -n, only check.",
)
@click.option(
    "--fail-fast",
    "fail_fast",
    type=count(1, 100_000),
    default=None,
    metavar="N",
    help="Pause the sweep (hold its queued jobs) when its first N jobs to end all fail "
    "with one exit code and log no metric (default: `fail_fast` in the file, else 3).",
)
@click.option("--no-fail-fast", is_flag=True, help="Never pause the sweep, however its jobs fail.")
@submit_option_flags
@click.option("--json", "as_json", is_flag=True, help="Print the sweep's jobs as JSON.")
@server_option()
@user_errors
def run_cmd(
    file: Path,
    prefix: str | None,
    dry_run: bool,
    seed: int | None,
    check: bool,
    fail_fast: int | None,
    no_fail_fast: bool,
    as_json: bool,
    server: str | None,
) -> None:
    """Queue one job per point of the sweep in FILE.

    Each job runs `program --key value ...`, is named <name>-<i>, is tagged
    sweep:<name>, and has the point as its config. When its first 3 jobs to end
    all fail with one exit code and log no metric, the sweep pauses: its queued
    jobs are held until `whirr sweep resume NAME`. A bayes sweep (method: bayes,
    needs whirr[sweeps]) queues its first max_concurrent points; each job that
    ends proposes the next one (Optuna's TPE), and early_terminate cancels runs
    whose metric lags (reason pruned).

    \b
    Examples:
      whirr sweep sweep.yaml
      whirr sweep sweep.yaml -p lr-v2 --priority 5
      whirr sweep sweep.yaml --seed 7 -n
      whirr sweep sweep.yaml -n --check   check the flags against `program --help`
      whirr sweep sweep.yaml --server http://head-node:8080
    """
    from whirr.studies.linking import submit_option_names
    from whirr.sweeps.service import new_seed
    from whirr.sweeps.spec import NAME_PATTERN, SweepFileError, parse_spec
    from whirr.wire.studies import SweepCreateRequest

    try:
        text = file.read_text(encoding="utf-8")
    except OSError as exc:
        raise SweepFileError(f"cannot read {file}: {exc.strerror}") from None
    except UnicodeDecodeError as exc:
        raise SweepFileError(f"{file} is not UTF-8 text (byte {exc.start})") from None
    # Read here first, so a bad file is refused with its line before anything is sent
    # and a dry run needs no project or server; the store parses it again to record it.
    spec = parse_spec(text, source=str(file), submit_options=submit_option_names())
    name = prefix or spec.name or file.stem
    if not NAME_PATTERN.fullmatch(name):
        raise click.BadParameter(
            f"{name!r} is not a usable sweep name (letters, digits, '.', '_', '-')",
            param_hint="'-p/--prefix'",
        )
    submit_options = collect_submit_options()
    problem = type_error(spec.submit)  # a dry run checks them too
    if problem is not None:
        raise SweepFileError(f"{file}: submit: {problem}")
    if fail_fast is not None and no_fail_fast:
        raise click.UsageError("give --fail-fast N or --no-fail-fast, not both")
    if no_fail_fast:
        fail_fast = 0
    if spec.method in ("random", "bayes") and seed is None:
        seed = spec.seed if spec.seed is not None else new_seed()
    if spec.method == "bayes":
        from whirr.sweeps import optuna_study

        optuna_study.require()  # before anything is queued: the one-line "install" error
    if check:
        _check_flags(spec.argv, [f"--{p.name}" for p in spec.parameters], quiet=as_json)
    if dry_run:
        planned = _first_jobs(spec, name, seed)
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
        if spec.method == "bayes":
            click.echo(
                f"Then each job that ends proposes the next point (TPE), up to {spec.max_runs} "
                f"jobs, {spec.max_concurrent} queued or running at once."
            )
        return
    # The jobs run in this directory (on a server's workers, in the same path there).
    req = SweepCreateRequest(
        spec=text,
        workdir=os.getcwd(),
        name=name,
        seed=seed,
        source=str(file),
        options=submit_options,
        fail_fast=fail_fast,
    )
    with open_whirr(server) as whirr:
        queued = whirr.studies.create_sweep(req)
    record = queued.sweep
    if as_json:
        emit_json(
            {
                "sweep": name,
                "seed": record.seed,
                "jobs": [
                    {"index": m.index, "job_id": m.job_id, "config": m.config} for m in record.jobs
                ],
            }
        )
        return
    ids = [j.id for j in queued.jobs]
    span = f"#{ids[0]}-#{ids[-1]}" if len(ids) > 1 else f"#{ids[0]}"
    seeded = f", seed {record.seed}" if record.seed is not None else ""
    click.echo(f"Sweep {name}: queued {len(ids)} job(s) {span} ({spec.method}{seeded})")
    if spec.method == "bayes":
        click.echo(
            f"Each job that ends proposes the next point, up to {spec.max_runs} jobs "
            f"({spec.max_concurrent} queued or running at once)."
        )
    click.echo(f"Progress: whirr sweep status {name}")


def _first_jobs(spec: SweepSpec, name: str, seed: int | None) -> list[PlannedJob]:
    """The jobs queued at once: every planned one, or a bayes sweep's first points."""
    from whirr.sweeps import expand

    if spec.method != "bayes":
        return expand.plan(spec, name, seed)
    from whirr.sweeps import optuna_study

    assert spec.max_runs is not None and spec.max_concurrent is not None
    configs = optuna_study.first_points(
        spec.parameters,
        min(spec.max_concurrent, spec.max_runs),
        goal=spec.goal,
        seed=seed or 0,
    )
    return [
        expand.PlannedJob(i, f"{name}-{i}", expand.command(spec.argv, config), config)
        for i, config in enumerate(configs)
    ]


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
    with open_whirr(server) as whirr:
        report = whirr.studies.sweep_report(name, metric, goal)
        missing = report.metric is not None and (report.best is None or report.best.value is None)
        seen = _metrics_seen(whirr, report) if missing and not as_json else []
    if as_json:
        emit_json(report)
        return
    _print_report(report, seen)


#: Runs ``whirr sweep status`` reads to list the metrics that do exist.
_RUNS_LOOKED_AT = 20


def _metrics_seen(whirr: Whirr, report: SweepReportOut) -> list[str]:
    """The summary keys and logged metrics of the sweep's runs (the first few that
    started), for when none reported the metric asked for: a typo shows at once."""
    names: dict[str, None] = {}
    runs = [job.run_id for job in report.jobs if job.run_id and job.status != "queued"]
    for run_id in runs[:_RUNS_LOOKED_AT]:
        try:
            names.update(dict.fromkeys(whirr.run(run_id).summary))
            for row in whirr.tail(run_id, "metrics", 10):
                names.update(dict.fromkeys(k for k in row if k not in ("_idx", "_timestamp")))
        except NotFound:
            continue  # a run not recorded yet
    return sorted(names)


def _print_report(report: SweepReportOut, seen: list[str]) -> None:
    sweep, progress = report.sweep, report.progress
    finished = progress.done + progress.failed + progress.cancelled
    seeded = f", seed {sweep.seed}" if sweep.seed is not None else ""
    click.echo(
        f"Sweep {sweep.name}: {sweep.method}{seeded}, {progress.planned} job(s), "
        f"created {local_time(report.created_at)}"
    )
    click.echo(f"Program: {sweep.program}")
    click.echo(
        f"Progress: {finished}/{progress.planned} finished - "
        f"{progress.queued} queued, {progress.running} running, {progress.done} done, "
        f"{progress.failed} failed, {progress.cancelled} cancelled"
        + (
            " (incomplete: `whirr sweep resume` queues the rest)"
            if report.state == "incomplete"
            else ""
        )
    )
    if sweep.paused is not None:
        click.echo(
            f"Paused (fail-fast): {sweep.paused}; its queued jobs are held: fix the cause, "
            f"then `whirr sweep resume {sweep.name}`"
        )
    keys = list(sweep.parameters)
    headers = ["#", "JOB", "STATUS", *keys] + ([report.metric.upper()] if report.metric else [])
    best = report.best
    rows = []
    for row in report.jobs:
        value = [] if not report.metric else ["-" if row.value is None else f"{row.value:.6g}"]
        rows.append(
            [
                str(row.index),
                f"#{row.job_id}",
                row.status or "?",
                *[_cell(row.config.get(k)) for k in keys],
                *value,
            ]
        )
        if best is not None and row.index == best.index:
            rows[-1][-1] += " *"
    click.echo("")
    print_table(headers, rows)
    click.echo("")
    if report.metric is None:
        click.echo("Give -m METRIC to find the best run.")
    elif best is None or best.value is None:
        there = f"metrics they did report: {', '.join(seen)}" if seen else "none reported any"
        click.echo(f"No run has reported {report.metric} yet ({there}).")
    else:
        config = " ".join(f"{k}={_cell(v)}" for k, v in best.config.items())
        click.echo(
            f"Best {report.metric} ({report.goal}): {best.value:.6g} - "
            f"{sweep.name}-{best.index} (job #{best.job_id}, run {best.run_id or '?'})"
        )
        click.echo(f"  {config}")


@sweep_cmd.command("resume")
@click.argument("name")
@server_option()
@user_errors
def resume_cmd(name: str, server: str | None) -> None:
    """Release the jobs a paused sweep holds, and queue the jobs of an interrupted
    sweep that were never queued.

    A sweep pauses when its first jobs to end all fail the same way (see
    `whirr sweep run --fail-fast`); fix the cause, then resume it."""
    with open_whirr(server) as whirr:
        resumed = whirr.studies.resume_sweep(name)
    jobs, released = resumed.jobs, resumed.released
    if released:
        click.echo(f"Sweep {name}: released {len(released)} held job(s)")
    if jobs:
        click.echo(f"Sweep {name}: queued {len(jobs)} more job(s)")
    elif not released:
        click.echo(f"Sweep {name}: every job was already queued")


@sweep_cmd.command("cancel")
@click.argument("name")
@server_option()
@user_errors
def cancel_cmd(name: str, server: str | None) -> None:
    """Cancel a sweep's queued and running jobs."""
    with open_whirr(server) as whirr:
        cancelled = whirr.studies.cancel_sweep(name)
    click.echo(f"Sweep {name}: cancelled {cancelled.count} job(s)")


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
    with open_whirr(server) as whirr:
        listed = whirr.studies.sweeps()
    if as_json:
        emit_json({"sweeps": [_listed_json(s) for s in listed]})
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
                s.name,
                s.method,
                f"{s.progress.submitted}/{s.progress.planned}",
                str(s.progress.queued),
                str(s.progress.running),
                str(s.progress.done),
                str(s.progress.failed),
                str(s.progress.cancelled),
                s.state,
                local_time(s.created_at),
            ]
            for s in listed
        ],
    )


def _listed_json(sweep: SweepOut) -> dict[str, Any]:
    """A sweep as ``whirr sweeps --json`` lists it (its jobs are in ``sweep status``)."""
    return {
        "name": sweep.name,
        "method": sweep.method,
        "created_at": sweep.created_at,
        "metric": sweep.metric,
        "seed": sweep.seed,
        "state": sweep.state,
        "progress": sweep.progress,
    }


def _check_flags(argv: list[str], flags: list[str], *, quiet: bool) -> None:
    """``--check``: run ``program --help`` once here and refuse the sweep when a flag it
    would pass is not listed, or when the help cannot be read (so nothing is checked)."""
    from whirr.sweeps.flags import check_flags

    result = check_flags(argv, flags, os.getcwd())
    shown = shlex.join(result.command)
    if result.problem is not None:
        raise click.ClickException(
            f"cannot check the sweep's flags: ran `{shown}`; {result.problem}"
        )
    for unknown in result.unknown:
        hint = f" (did you mean {unknown.suggestion}?)" if unknown.suggestion else ""
        click.echo(f"Warning: {unknown.flag} is not an option `{shown}` lists{hint}", err=True)
    if result.unknown:
        names = ", ".join(u.flag for u in result.unknown)
        raise click.ClickException(
            f"{len(result.unknown)} of the {len(flags)} flag(s) the sweep passes are not "
            f"listed by `{shown}`: {names}"
        )
    if not quiet:
        click.echo(f"Check: `{shown}` lists every flag the sweep passes ({', '.join(flags)})")


def _cell(value: Any) -> str:
    from whirr.sweeps.expand import format_value

    return "-" if value is None else format_value(value)
