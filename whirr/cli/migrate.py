"""``whirr migrate``: turn an original whirr (0.5.3) project into this whirr's log."""

from __future__ import annotations

from pathlib import Path

import click

from whirr.cli.common import emit_json, user_errors


def _counts(counts: dict[str, int]) -> str:
    return ", ".join(f"{n} {status}" for status, n in sorted(counts.items()))


@click.command("migrate")
@click.option("-n", "--dry-run", is_flag=True, help="Say what would be migrated; change nothing.")
@click.option(
    "-d",
    "--data-dir",
    type=click.Path(exists=True, file_okay=False, path_type=Path),
    default=None,
    help="A data dir of whirr 0.5.3's server on SQLite (whirr.db, runs/) instead of the "
    "enclosing project.",
)
@click.option("--json", "as_json", is_flag=True, help="Print what was (or would be) done as JSON.")
@user_errors
def migrate_cmd(dry_run: bool, data_dir: Path | None, as_json: bool) -> None:
    """Convert a project made by the original whirr (0.5.3) to this whirr.

    The original database is copied beside it first (.whirr/whirr-0.5.3-TIME.db); its
    jobs and runs become this whirr's event log, keeping job ids, run ids, names,
    configs, tags, statuses, times and summaries. Run folders stay where they are
    (metrics.jsonl, output.log, artifacts/). New jobs are numbered above the old ones.
    Running it again says there is nothing to do. Stop the 0.5.3 workers first: a job
    one of them still runs stops the migration before anything is written.

    \b
    Examples:
      whirr migrate --dry-run
      whirr migrate
      whirr migrate -d /srv/whirr     # the data dir of 0.5.3's `whirr server`
    """
    from whirr.config import Config
    from whirr.identity import DataDir
    from whirr.identity import Project as Place
    from whirr.migrate.convert import migrate
    from whirr.project import find_project

    place: Place
    if data_dir is not None:
        place, timeout = DataDir(data_dir.expanduser().resolve()), Config().heartbeat_timeout
    else:
        project = find_project()
        place, timeout = project, project.config.heartbeat_timeout
    say = (lambda message: None) if as_json else click.echo
    done = migrate(place, heartbeat_timeout=timeout, dry_run=dry_run, say=say)
    if as_json:
        emit_json(done)
        return
    if done.nothing_to_do:
        click.echo(f"{done.database} is this whirr's log already: nothing to do")
        return
    jobs = f"{done.jobs} jobs ({_counts(done.job_statuses)})" if done.jobs else "0 jobs"
    runs = f"{done.runs} runs ({_counts(done.run_statuses)})" if done.runs else "0 runs"
    if done.dry_run:
        click.echo(
            f"Dry run: would migrate {jobs} and {runs} from {done.database} (whirr 0.5.3), "
            f"after backing it up beside it; new jobs would be numbered from "
            f"#{done.next_job_id}. Nothing was changed."
        )
        return
    click.echo(
        f"Migrated {jobs} and {runs} into this whirr's log; new jobs are numbered from "
        f"#{done.next_job_id}"
    )
