"""``whirr init`` and ``whirr doctor``."""

from __future__ import annotations

from pathlib import Path

import click

from whirr.cli.common import emit_json, fail, server_option, user_errors


@click.command("init")
@click.argument("path", type=click.Path(file_okay=False, path_type=Path), default=".")
@click.option(
    "--force-new-history",
    is_flag=True,
    help="The project's database is lost or damaged: move it aside (into .whirr/lost-TIME/) "
    "and start an empty history; new job ids start above every runs/job-N.",
)
@user_errors
def init_cmd(path: Path, force_new_history: bool) -> None:
    """Create a whirr project in PATH (default: the current directory).

    Makes PATH/.whirr/ with config.yaml, the event log whirr.db and runs/.
    Running it again is harmless.

    \b
    Example:
      whirr init            # this directory
      whirr init ~/exp/cifar
      whirr init --force-new-history   # whirr.db was lost: start over, on purpose
    """
    from whirr.project import init_project

    if force_new_history:
        _new_history(path)
        return

    try:
        project, created = init_project(path)
    except FileExistsError as exc:  # .whirr (or a folder on the way) is a file
        fail(f"cannot create a project in {path}: {exc.filename} exists and is not a folder")
        return
    except OSError as exc:
        where = f" ({exc.filename})" if exc.filename else ""
        fail(f"cannot create a project in {path}: {exc.strerror}{where}")
        return
    if created:
        click.echo(f"Initialized whirr project in {project.dir}")
    else:
        click.echo(f"whirr project already initialized in {project.dir} (nothing changed)")


def _new_history(path: Path) -> None:
    from whirr.identity import start_new_history
    from whirr.project import Project

    project = Project(path.resolve())
    if not project.dir.is_dir():
        raise click.UsageError(f"no whirr project in {project.root}: run `whirr init`")
    aside = start_new_history(project)
    where = f"; the old database files are in {aside}" if aside else ""
    click.echo(f"Started a new, empty history in {project.dir}{where}")


@click.command("doctor")
@click.option("--json", "as_json", is_flag=True, help="Print the checks as JSON.")
@server_option()
@user_errors
def doctor_cmd(as_json: bool, server: str | None) -> None:
    """Check the project, database, WAL mode, schema version, workers and GPUs; or, with
    --server (or WHIRR_SERVER_URL), that the server answers, takes the token, runs a
    compatible version and has a working store, and which workers it has heard from.

    Exits 1 when any check finds a problem.

    \b
    Examples:
      whirr doctor
      whirr doctor --server http://head:8080 --json
    """
    from whirr.doctor import run_checks

    checks = run_checks(server)
    if as_json:
        emit_json([{"name": c.name, "ok": c.ok, "detail": c.detail} for c in checks])
    else:
        for check in checks:
            mark = "ok " if check.ok else ("-- " if check.ok is None else "XX ")
            click.echo(f"[{mark}] {check.name}: {check.detail}")
    if any(c.ok is False for c in checks):
        raise SystemExit(1)
