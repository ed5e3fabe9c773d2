"""``whirr backup`` and ``whirr restore``: a consistent copy of a project, and putting it back."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import click

from whirr.cli.common import emit_json, user_errors

if TYPE_CHECKING:
    from whirr.identity import Project as IdentityProject

_DATA_DIR = click.option(
    "-d",
    "--data-dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="A `whirr server`'s SQLite data dir instead of the enclosing project.",
)


def _target(data_dir: Path | None, *, may_be_new: bool = False) -> IdentityProject:
    from whirr.identity import DataDir
    from whirr.project import Project, ProjectNotFound, find_project

    if data_dir is not None:
        return DataDir(data_dir.expanduser().resolve())
    try:
        return find_project()
    except ProjectNotFound:
        if not may_be_new:
            raise
        return Project(Path.cwd().resolve())  # restoring where there is no project yet


@click.command("backup")
@click.argument("dest", type=click.Path(path_type=Path))
@click.option("--no-runs", is_flag=True, help="Copy the database only, not the run directories.")
@_DATA_DIR
@click.option("--json", "as_json", is_flag=True, help="Print the backup's manifest as JSON.")
@user_errors
def backup_cmd(dest: Path, no_runs: bool, data_dir: Path | None, as_json: bool) -> None:
    """Copy the project (database, identity, config and run directories) into DEST.

    DEST must be a new or empty directory. The database copy is consistent (one
    moment of the log, what the WAL holds included) while workers keep writing; run
    directories are copied as they are at that time. A server on PostgreSQL is backed
    up with pg_dump instead (see docs/server-setup.md, "Backups").

    \b
    Examples:
      whirr backup ~/backups/whirr-$(date +%F)
      whirr backup /mnt/backup/db-only --no-runs
      whirr backup -d /srv/whirr /mnt/backup/server
    """
    from whirr.backup import BackupError, backup

    target = _target(data_dir)
    if not target.db_path.exists() and data_dir is not None:
        raise BackupError(
            f"no database at {target.db_path}: a server on PostgreSQL is backed up with "
            "pg_dump (see docs/server-setup.md, Backups)"
        )
    say = (lambda message: None) if as_json else click.echo
    manifest = backup(target, dest, runs=not no_runs, say=say)
    if as_json:
        emit_json(manifest)
        return
    click.echo(
        f"Backed up {target.dir} to {dest} (log position {manifest.position}"
        f"{', run directories included' if manifest.runs else ''})"
    )


@click.command("restore")
@click.argument("src", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option(
    "--force",
    is_flag=True,
    help="Replace an existing database (it is moved aside into .whirr/replaced-<time>/).",
)
@_DATA_DIR
@click.option("--json", "as_json", is_flag=True, help="Print what was restored as JSON.")
@user_errors
def restore_cmd(src: Path, force: bool, data_dir: Path | None, as_json: bool) -> None:
    """Put the backup in SRC back as the project's database.

    The backup is checked first (SQLite's integrity check, and that it holds the
    project its project-id names). The current database, if any, is moved aside, never
    deleted (--force is needed for that). Run directories of the backup that the
    project lacks are copied back; existing ones are left as they are. The restore is
    recorded in the log (project.restored), and new jobs are numbered above every
    runs/job-N, so none writes into a run made after the backup. Stop workers first.
    Without a project here, the backup becomes one in the current directory.

    \b
    Examples:
      whirr restore ~/backups/whirr-2026-12-01 --force
      whirr restore -d /srv/whirr /mnt/backup/server --force
    """
    from whirr.backup import restore

    target = _target(data_dir, may_be_new=True)
    say = (lambda message: None) if as_json else click.echo
    done = restore(target, src, force=force, say=say)
    if as_json:
        emit_json(
            {
                "manifest": done.manifest,
                "moved_aside": str(done.moved_aside) if done.moved_aside else None,
                "runs_added": done.runs_added,
                "position": done.position,
            }
        )
        return
    if done.moved_aside is not None:
        click.echo(f"The previous database is in {done.moved_aside}")
    click.echo(
        f"Restored {src} (taken {done.manifest.taken_at}, log position "
        f"{done.manifest.position}) into {target.dir}; {done.runs_added} run "
        f"director{'y' if done.runs_added == 1 else 'ies'} added; recorded at position "
        f"{done.position}"
    )
