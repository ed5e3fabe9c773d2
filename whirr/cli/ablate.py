"""``whirr ablate init|baseline|add|run|rank|list``: ablation studies with paired seeds."""

from __future__ import annotations

import os
import shlex
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from whirr.cli.common import emit_json, print_table, server_option, user_errors
from whirr.cli.study_options import collect_submit_options, submit_option_flags
from whirr.clock import local_time
from whirr.facade import open_whirr
from whirr.wire import studies as wire

if TYPE_CHECKING:
    from whirr.wire.studies import AblationOut, AblationRankingOut

#: Replicates per condition (as ``POST /ablations`` takes them).
REPLICATES = click.IntRange(1, 10_000)


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
    type=REPLICATES,
    default=20,
    show_default=True,
    help="Replicates per condition when `run` is not told otherwise.",
)
@click.option(
    "--seed-base",
    type=click.IntRange(0, 2**62),
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
    req = wire.AblationCreateRequest(
        name=name, metric=metric, replicates=replicates, seed_base=seed_base
    )
    with open_whirr(server) as whirr:
        study = whirr.studies.create_ablation(req)
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
    with open_whirr(server) as whirr:
        whirr.studies.set_ablation_baseline(
            name, wire.AblationValuesRequest(values=values, files=files)
        )
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
    req = wire.AblationValuesRequest(values=values, files=files, delta=delta)
    with open_whirr(server) as whirr:
        added = whirr.studies.add_ablation_delta(name, req)
    replaced = added.replaced
    shown = (delta or next(iter(values))) if replaced else added.ablation.deltas[-1].name
    click.echo(f"{'Replaced' if replaced else 'Added'} delta {shown} of {name}:")
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
    type=REPLICATES,
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
    with open_whirr(server) as whirr:
        if dry_run:
            plan = wire.AblationPlanRequest(command=argv, replicates=replicates)
            cells = whirr.studies.plan_ablation(name, plan)
            print_table(
                ["CONDITION", "REPLICATE", "SEED", "COMMAND"],
                [[c.condition, str(c.replicate), str(c.seed), shlex.join(c.argv)] for c in cells],
            )
            click.echo(f"\nDry run: {len(cells)} job(s) of study {name}; nothing queued.")
            return
        # The jobs run in this directory (on a server's workers, in the same path there).
        req = wire.AblationRunRequest(
            command=argv,
            workdir=os.getcwd(),
            replicates=replicates,
            options=submit_options,
            force=force,
        )
        jobs = whirr.studies.run_ablation(name, req).jobs
    if not jobs:
        click.echo(f"Study {name}: every cell is already queued or done; nothing to run.")
        return
    ids = [j.id for j in jobs]
    span = f"#{ids[0]}-#{ids[-1]}" if len(ids) > 1 else f"#{ids[0]}"
    click.echo(f"Study {name}: queued {len(ids)} job(s) {span}")
    click.echo(f"Rank: whirr ablate rank {name}")


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
    effect's sign. A * marks an interval that excludes zero. A run's value is
    its summary[METRIC] if set, else the last METRIC it logged. With --server,
    the server ranks them from its runs' files.
    """
    with open_whirr(server) as whirr:
        ranking = whirr.studies.ablation_ranking(name)
    if as_json:
        emit_json(ranking)
        return
    _print_ranking(ranking, verbose)


def _print_ranking(ranking: AblationRankingOut, verbose: bool) -> None:
    name, metric = ranking.name, ranking.metric
    base = ranking.baseline.values
    mean = f"{sum(base.values()) / len(base):.4g}" if base else "-"
    click.echo(f"Study {name}: metric {metric}, baseline mean {mean} (n={len(base)})")
    notes = [
        f"{ranking.pending} pending" if ranking.pending else "",
        f"{ranking.failed} failed" if ranking.failed else "",
        f"{ranking.no_metric} without {metric}" if ranking.no_metric else "",
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
        f"{metric} against baseline)"
    )
    if verbose:
        click.echo("\nPairs (replicate: baseline -> delta):")
        for e in ranking.effects:
            pairs = ", ".join(f"{p.replicate}: {p.baseline:.4g}->{p.delta:.4g}" for p in e.pairs)
            click.echo(f"  {e.delta}: {pairs}")


@ablate_cmd.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@server_option()
@user_errors
def list_cmd(as_json: bool, server: str | None) -> None:
    """List ablation studies with their deltas and jobs."""
    with open_whirr(server) as whirr:
        found = whirr.studies.ablations()
    if as_json:
        emit_json({"studies": [_listed_json(s) for s in found]})
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
                str(_cells(s)),
                local_time(s.created_at),
            ]
            for s in found
        ],
    )


def _cells(study: AblationOut) -> int:
    """The study's cells (condition x replicate) that have a job (a re-run replaces one)."""
    return len({(m.condition, m.replicate) for m in study.members})


def _listed_json(study: AblationOut) -> dict[str, Any]:
    """A study as ``whirr ablate list --json`` lists it."""
    return {
        "name": study.name,
        "metric": study.metric,
        "seed_base": study.seed_base,
        "replicates": study.replicates,
        "created_at": study.created_at,
        "baseline": study.baseline,
        "deltas": study.deltas,
        "jobs": _cells(study),
    }
