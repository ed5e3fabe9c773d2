"""``whirr import mlflow|tensorboard|wandb``: bring another tool's runs into the project."""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import Any

import click

from whirr.cli.common import emit_json, fail, user_errors


@click.group("import")
def import_cmd() -> None:
    """Import runs from MLflow, TensorBoard or W&B as ordinary whirr runs.

    Each imported run keeps its source's times, config, metrics (with steps), summary
    and tags, is tagged import:<source>, and is known by its source id: importing the
    same runs again adds nothing. Progress goes to stderr. See docs/import.md.

    \b
    Examples:
      whirr import mlflow ./mlruns
      whirr import mlflow sqlite:///mlflow.db --dry-run
      whirr import tensorboard runs/
      whirr import wandb ./wandb --json
    """


def _options(func: Callable[..., Any]) -> Callable[..., Any]:
    func = click.option(
        "-n", "--dry-run", is_flag=True, help="Read the source and say what would be imported."
    )(func)
    return click.option(
        "--json", "as_json", is_flag=True, help="Print the summary as JSON (runs included)."
    )(func)


@import_cmd.command("mlflow")
@click.argument("uri")
@_options
@user_errors
def mlflow_cmd(uri: str, dry_run: bool, as_json: bool) -> None:
    """Import the runs of an MLflow tracking store: URI is a file: store or an mlruns
    directory, or an sqlite: database (sqlite:///path/mlflow.db).

    Params become the config (numbers parsed), metrics keep their steps and times,
    tags (but MLflow's own mlflow.*) become key=value tags with experiment:<name>, and
    local artifacts are copied into the run's artifacts/.
    """
    _import("mlflow", uri, dry_run, as_json)


@import_cmd.command("tensorboard")
@click.argument("logdir", type=click.Path(exists=True, file_okay=False))
@_options
@user_errors
def tensorboard_cmd(logdir: str, dry_run: bool, as_json: bool) -> None:
    """Import the scalars of a TensorBoard log directory: each folder holding event
    files is one run, named by its path under LOGDIR, with steps and wall times."""
    _import("tensorboard", logdir, dry_run, as_json)


@import_cmd.command("wandb")
@click.argument("directory", type=click.Path(exists=True, file_okay=False))
@_options
@user_errors
def wandb_cmd(directory: str, dry_run: bool, as_json: bool) -> None:
    """Import W&B offline runs (WANDB_MODE=offline): DIRECTORY is a wandb/ folder, the
    folder holding it, or one offline-run-* folder. Config, history (numbers) and
    summary are imported."""
    _import("wandb", directory, dry_run, as_json)


def _import(source: str, location: str, dry_run: bool, as_json: bool) -> None:
    from whirr.importers import SourceError, read_source
    from whirr.importers.writer import Importer
    from whirr.project import find_project

    project = find_project()
    store = project.open_store()
    importer = Importer(store, project.runs_dir)
    runs: list[dict[str, Any]] = []
    try:
        for run in read_source(source, location):
            entry: dict[str, Any] = {
                "run_id": run.run_id,
                "name": run.name,
                "source_id": f"{run.source}:{run.key}",
                "metric_points": len(run.points),
                "artifacts": len(run.artifacts),
            }
            if dry_run:
                entry["new"] = not importer.known(run.run_id)
            else:
                done = importer.add(run)
                entry["new"] = done.added
                entry["metric_rows"] = done.rows
            runs.append(entry)
            _progress(len(runs), entry)
    except SourceError as exc:
        fail(str(exc))
    except OSError as exc:
        fail(f"cannot read {location}: {exc.strerror or exc}")
    finally:
        store.close()
    new = sum(1 for r in runs if r["new"])
    counts = f"{new} new, {len(runs) - new} already imported"
    if as_json:
        emit_json(
            {
                "source": source,
                "location": location,
                "dry_run": dry_run,
                "new": new,
                "already_imported": len(runs) - new,
                "runs": runs,
            }
        )
    elif dry_run:
        click.echo(f"Would import from {source}: {counts} (dry run: nothing written)")
    else:
        click.echo(f"Imported from {source}: {counts}")


def _progress(index: int, entry: dict[str, Any]) -> None:
    """One line per run on stderr (an import of thousands of runs shows it moves)."""
    what = "new" if entry["new"] else "already imported"
    name = f" ({entry['name']})" if entry["name"] else ""
    click.echo(
        f"[{index}] {entry['run_id']}{name}: {what}, {entry['metric_points']} metric points,"
        f" {entry['artifacts']} artifacts",
        file=sys.stderr,
    )
