"""``whirr ablate init|baseline|add|run|rank|list``: ablation studies with paired seeds."""

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
def _studies(server: str | None) -> Iterator[Any]:
    """The ablation operations of the local project, or of ``server`` (same methods)."""
    if server:
        from whirr.ablations.remote import RemoteAblations
        from whirr.cli.remote import client

        with client(server) as c:
            yield RemoteAblations(c)
        return
    from whirr.ablations.service import Ablations

    with project_store() as (project, store):
        yield Ablations(store, project.dir / "ablations")


@click.group("ablate")
def ablate_cmd() -> None:
    """Ablation studies: which change moves a metric, and by how much?

    Every condition (the baseline and each delta) runs over the same replicate
    seeds, so each delta is judged by paired differences against the baseline.

    \b
    Example:
      whirr ablate init prompts -m win
      whirr ablate baseline prompts temperature=0.7 system=@prompts/v1.txt
      whirr ablate add prompts temperature=0 -n cold
      whirr ablate add prompts system=@prompts/v2.txt -n v2
      whirr ablate run prompts -r 10 -- python eval.py --seed {{seed}} --cfg {{cfg_path}}
      whirr worker --exit-when-empty
      whirr ablate rank prompts

    Every subcommand takes -s/--server URL (or WHIRR_SERVER_URL): the study then
    lives on that server and its jobs run on the server's workers. See
    docs/ablations.md.
    """


@ablate_cmd.command("init")
@click.argument("name")
@click.option(
    "-m",
    "--metric",
    required=True,
    help="The metric to compare (summary value, else the last value logged).",
)
@click.option(
    "-r",
    "--replicates",
    type=click.IntRange(min=1),
    default=20,
    show_default=True,
    help="Replicates per condition when `run` is not told otherwise.",
)
@click.option(
    "--seed-base",
    type=click.IntRange(min=0),
    default=None,
    help="Replicate r uses seed SEED_BASE + r (default: a random base, recorded).",
)
@server_option()
@user_errors
def init_cmd(
    name: str, metric: str, replicates: int, seed_base: int | None, server: str | None
) -> None:
    """Create ablation study NAME, compared on METRIC.

    \b
    Example:
      whirr ablate init lr-study -m val_loss -r 10
    """
    with _studies(server) as studies:
        study = studies.create(name, metric, replicates=replicates, seed_base=seed_base)
    click.echo(
        f"Created ablation study {name}: metric {metric}, {replicates} replicates, "
        f"seeds {study.seed_base}..{study.seed_base + replicates - 1}"
    )
    click.echo(
        "Next: whirr ablate baseline / add, then "
        f"whirr ablate run {name} -- CMD --seed {{{{seed}}}} --cfg {{{{cfg_path}}}}"
    )


def _echo_values(values: dict[str, Any], files: dict[str, str]) -> None:
    from whirr.sweeps.expand import format_value

    for key, value in values.items():
        shown = f"@{files[key]}" if key in files else format_value(value)
        click.echo(f"  {key}={shown}")


@ablate_cmd.command("baseline")
@click.argument("name")
@click.argument("assignments", nargs=-1, required=True, metavar="KEY=VALUE...")
@server_option()
@user_errors
def baseline_cmd(name: str, assignments: tuple[str, ...], server: str | None) -> None:
    """Set baseline values of study NAME (merged over earlier ones).

    Values: 3 (int), 1e-3 or 0.5 (float), true/false, [1,2] (JSON), '3' (a
    string), @path (the file's text); anything else is a string.

    \b
    Example:
      whirr ablate baseline prompts temperature=0.7 system=@prompts/v1.txt
    """
    from whirr.ablations.values import parse_assignments

    values, files = parse_assignments(assignments, Path.cwd())
    with _studies(server) as studies:
        studies.set_baseline(name, values, files)
    click.echo(f"Baseline of {name}:")
    _echo_values(values, files)


@ablate_cmd.command("add")
@click.argument("name")
@click.argument("assignments", nargs=-1, required=True, metavar="KEY=VALUE...")
@click.option("-n", "--name", "delta", help="Name of the delta (default: its first key).")
@server_option()
@user_errors
def add_cmd(name: str, assignments: tuple[str, ...], delta: str | None, server: str | None) -> None:
    """Add a delta to study NAME: values that replace the baseline's.

    Values are typed as for `baseline`. Adding a delta under an existing name
    replaces it.

    \b
    Examples:
      whirr ablate add prompts temperature=0
      whirr ablate add prompts lr=1e-3 batch_size=64 -n big-batch
      whirr ablate add prompts system=@prompts/v2.txt -n v2
    """
    from whirr.ablations.values import parse_assignments

    values, files = parse_assignments(assignments, Path.cwd())
    with _studies(server) as studies:
        study, replaced = studies.add_delta(name, values, delta=delta, files=files)
    added = study.deltas[-1].name if not replaced else (delta or next(iter(values)))
    click.echo(f"{'Replaced' if replaced else 'Added'} delta {added} of {name}:")
    _echo_values(values, files)


class CommandAfterDashes(click.Command):
    """Options may come anywhere before ``--``; everything after it is the command, as is.

    Without ``--``, options must come before NAME and the command's own options (``-n``,
    ``--seed``) are left alone."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        dashes = "--" in args
        ctx.allow_interspersed_args = dashes
        ctx.ignore_unknown_options = not dashes
        return super().parse_args(ctx, args)


@ablate_cmd.command("run", cls=CommandAfterDashes)
@click.option(
    "-r",
    "--replicates",
    type=click.IntRange(min=1),
    default=None,
    help="Replicates per condition (default: the study's).",
)
@click.option("-n", "--dry-run", is_flag=True, help="Print the jobs; queue nothing.")
@click.option("--force", is_flag=True, help="Run even if the command differs from last time.")
@submit_option_flags
@server_option()
@click.argument("name")
@click.argument("command", nargs=-1, type=click.UNPROCESSED, required=True)
@user_errors
def run_cmd(
    replicates: int | None,
    dry_run: bool,
    force: bool,
    server: str | None,
    name: str,
    command: tuple[str, ...],
) -> None:
    """Queue every condition of study NAME for each replicate, with paired seeds.

    In COMMAND, {{seed}} becomes the replicate's seed and {{cfg_path}} the path
    of a JSON file holding the condition's values (baseline + delta) and an
    "__ablate__" entry (study, condition, replicate, seed). Running again
    queues only the cells not yet queued (or whose job failed), so a larger -r
    adds replicates and a new delta gets the same seeds as the baseline.

    With --server, the config files are written under the server's data dir
    (which its workers share) and the jobs run in this directory on the
    server's workers.

    \b
    Examples:
      whirr ablate run prompts -r 10 -- python eval.py --seed {{seed}} --cfg {{cfg_path}}
      whirr ablate run prompts -s http://head-node:8080 -- python eval.py --seed {{seed}}
    """
    argv = list(command)  # click consumed the `--`
    submit_options = collect_submit_options()
    with _studies(server) as studies:
        if dry_run:
            _, cells = studies.plan(name, argv, replicates)
            print_table(
                ["CONDITION", "REPLICATE", "SEED", "COMMAND"],
                [[c.condition, str(c.replicate), str(c.seed), shlex.join(c.argv)] for c in cells],
            )
            click.echo(f"\nDry run: {len(cells)} job(s) of study {name}; nothing queued.")
            return
        if not server:  # a server applies its own default
            submit_options.setdefault("max_attempts", _project_max_attempts())
        jobs = studies.run(
            name, argv, os.getcwd(), replicates=replicates, options=submit_options, force=force
        )
    if not jobs:
        click.echo(f"Study {name}: every cell is already queued or done; nothing to run.")
        return
    ids = [j.id for j in jobs]
    span = f"#{ids[0]}-#{ids[-1]}" if len(ids) > 1 else f"#{ids[0]}"
    click.echo(f"Study {name}: queued {len(ids)} job(s) {span}")
    click.echo(f"Rank: whirr ablate rank {name}")


def _project_max_attempts() -> int:
    from whirr.project import find_project

    attempts: int = find_project().config.max_attempts
    return attempts


def _fmt(value: float | None) -> str:
    return "-" if value is None else f"{value:+.4g}"


@ablate_cmd.command("rank")
@click.argument("name")
@click.option("-v", "--verbose", is_flag=True, help="Also print every pair's values.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@server_option()
@user_errors
def rank_cmd(name: str, verbose: bool, as_json: bool, server: str | None) -> None:
    """Rank the deltas of study NAME by effect on its metric, strongest first.

    effect = mean over replicates of (delta - baseline) on the same seed, i.e.
    mean(delta) - mean(baseline) over complete pairs; 95% CI by bootstrap
    (10,000 resamples, fixed seed); AGREE counts pairs whose difference has the
    effect's sign. A * marks an interval that excludes zero. With --server,
    the runs' values are read through the server's API.
    """
    with _studies(server) as studies:
        ranking = studies.rank(name)
    study = ranking.study
    if as_json:
        emit_json(
            {
                "name": study.name,
                "metric": study.metric,
                "seed_base": study.seed_base,
                "baseline": {"n": len(ranking.baseline_values), "values": ranking.baseline_values},
                "effects": [
                    {**msgspec_to_dict(e), "excludes_zero": e.excludes_zero}
                    for e in ranking.effects
                ],
                "pending": ranking.pending,
                "failed": ranking.failed,
                "no_metric": ranking.no_metric,
                "unpaired": ranking.unpaired,
            }
        )
        return
    base = ranking.baseline_values
    mean = f"{sum(base.values()) / len(base):.4g}" if base else "-"
    click.echo(f"Study {name}: metric {study.metric}, baseline mean {mean} (n={len(base)})")
    notes = [
        f"{ranking.pending} pending" if ranking.pending else "",
        f"{ranking.failed} failed" if ranking.failed else "",
        f"{ranking.no_metric} without {study.metric}" if ranking.no_metric else "",
    ]
    if any(notes):
        click.echo("  jobs: " + ", ".join(n for n in notes if n))
    if not ranking.effects:
        click.echo(f"\nNo complete pairs yet (run `whirr ablate run {name} -- CMD` and a worker).")
        return
    click.echo("")
    rows = []
    for i, e in enumerate(ranking.effects, 1):
        ci = f"[{_fmt(e.ci_low)}, {_fmt(e.ci_high)}]" + (" *" if e.excludes_zero else "")
        rows.append(
            [str(i), e.delta, _fmt(e.effect), ci, f"{e.agree}/{e.n}", f"{e.mean_delta:.4g}"]
        )
    print_table(["RANK", "DELTA", "EFFECT", "95% CI", "AGREE", "MEAN"], rows)
    strongest = ranking.effects[0]
    click.echo(
        f"\nStrongest effect: {strongest.delta} ({_fmt(strongest.effect)} "
        f"{study.metric} against baseline)"
    )
    if verbose:
        click.echo("\nPairs (replicate: baseline -> delta):")
        for e in ranking.effects:
            pairs = ", ".join(f"{p.replicate}: {p.baseline:.4g}->{p.delta:.4g}" for p in e.pairs)
            click.echo(f"  {e.delta}: {pairs}")


def msgspec_to_dict(value: Any) -> dict[str, Any]:
    """A Struct as a plain dict (for JSON output)."""
    import msgspec

    result: dict[str, Any] = msgspec.to_builtins(value)
    return result


@ablate_cmd.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@server_option()
@user_errors
def list_cmd(as_json: bool, server: str | None) -> None:
    """List ablation studies with their deltas and jobs."""
    with _studies(server) as studies:
        found = studies.all()
    if as_json:
        emit_json(
            {
                "studies": [
                    {
                        "name": s.name,
                        "metric": s.metric,
                        "seed_base": s.seed_base,
                        "replicates": s.replicates,
                        "created_at": s.created_at,
                        "baseline": s.baseline,
                        "deltas": [msgspec_to_dict(d) for d in s.deltas],
                        "jobs": len(s.latest()),
                    }
                    for s in found
                ]
            }
        )
        return
    if not found:
        click.echo("No ablation studies yet. Start one with `whirr ablate init NAME -m METRIC`.")
        return
    print_table(
        ["NAME", "METRIC", "DELTAS", "JOBS", "CREATED"],
        [
            [
                s.name,
                s.metric,
                ", ".join(d.name for d in s.deltas) or "-",
                str(len(s.latest())),
                local_time(s.created_at),
            ]
            for s in found
        ],
    )
