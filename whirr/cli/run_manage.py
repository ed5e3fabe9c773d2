"""``whirr runs rename/tag/untag/note/archive/unarchive/delete`` and ``whirr clean``: run
and job management, recorded as events (``whirr.events.manage``), locally or through a
server (``--server``), by the same facade calls."""

from __future__ import annotations

import click

from whirr.cli.common import emit_json, server_option, user_errors
from whirr.cli.scheduling import parse_duration
from whirr.facade import open_whirr
from whirr.wire import schemas

#: The statuses ``whirr clean --status`` takes: the ended ones.
_ENDED = ["completed", "failed", "cancelled", "timed_out"]


def _said(run: schemas.Run, what: str, as_json: bool) -> None:
    if as_json:
        emit_json(run)
    else:
        click.echo(f"Run {run.id}: {what}")


_JSON = click.option("--json", "as_json", is_flag=True, help="Print the run as JSON.")


@click.command("rename")
@click.argument("run_ref", metavar="RUN")
@click.argument("name")
@_JSON
@server_option()
@user_errors
def rename_cmd(run_ref: str, name: str, as_json: bool, server: str | None) -> None:
    """Give a run a new name.

    RUN is a full id, a unique prefix, or its job (12, #12, job-12).

    \b
    Examples:
      whirr runs rename job-12 baseline-lr3e-4
    """
    with open_whirr(server) as whirr:
        run = whirr.rename_run(run_ref, name)
    _said(run, f"renamed to {run.name}", as_json)


@click.command("tag")
@click.argument("run_ref", metavar="RUN")
@click.argument("tags", nargs=-1, required=True)
@_JSON
@server_option()
@user_errors
def tag_cmd(run_ref: str, tags: tuple[str, ...], as_json: bool, server: str | None) -> None:
    """Add tags to a run.

    \b
    Examples:
      whirr runs tag job-12 best paper
    """
    with open_whirr(server) as whirr:
        run = whirr.tag_run(run_ref, add=tags)
    _said(run, f"tags {', '.join(run.tags) or '(none)'}", as_json)


@click.command("untag")
@click.argument("run_ref", metavar="RUN")
@click.argument("tags", nargs=-1, required=True)
@_JSON
@server_option()
@user_errors
def untag_cmd(run_ref: str, tags: tuple[str, ...], as_json: bool, server: str | None) -> None:
    """Remove tags from a run.

    \b
    Examples:
      whirr runs untag job-12 draft
    """
    with open_whirr(server) as whirr:
        run = whirr.tag_run(run_ref, remove=tags)
    _said(run, f"tags {', '.join(run.tags) or '(none)'}", as_json)


@click.command("note")
@click.argument("run_ref", metavar="RUN")
@click.argument("text")
@click.option("--append", is_flag=True, help="Add TEXT as a new paragraph of the note.")
@_JSON
@server_option()
@user_errors
def note_cmd(run_ref: str, text: str, append: bool, as_json: bool, server: str | None) -> None:
    """Set a run's note (shown by `whirr show`); --append adds to it.

    \b
    Examples:
      whirr runs note job-12 "diverged after epoch 40: lr too high"
      whirr runs note job-12 --append "rerun as job-19 with lr/3"
    """
    with open_whirr(server) as whirr:
        run = whirr.note_run(run_ref, text, append=append)
    _said(run, "note appended" if append else "note set", as_json)


def _archive(refs: tuple[str, ...], archived: bool, server: str | None) -> None:
    with open_whirr(server) as whirr:
        for ref in refs:
            run = whirr.archive_run(ref, archived)
            click.echo(f"Run {run.id}: {'archived' if archived else 'unarchived'}")


@click.command("archive")
@click.argument("run_refs", metavar="RUN...", nargs=-1, required=True)
@server_option()
@user_errors
def archive_cmd(run_refs: tuple[str, ...], server: str | None) -> None:
    """Hide runs from default listings (kept, with their files).

    `whirr runs --archived` lists archived runs, `whirr runs --all` every run.
    """
    _archive(run_refs, True, server)


@click.command("unarchive")
@click.argument("run_refs", metavar="RUN...", nargs=-1, required=True)
@server_option()
@user_errors
def unarchive_cmd(run_refs: tuple[str, ...], server: str | None) -> None:
    """Show archived runs in default listings again."""
    _archive(run_refs, False, server)


@click.command("delete")
@click.argument("run_refs", metavar="RUN...", nargs=-1, required=True)
@click.option("-y", "--yes", is_flag=True, help="Do not ask for confirmation.")
@server_option()
@user_errors
def delete_cmd(run_refs: tuple[str, ...], yes: bool, server: str | None) -> None:
    """Delete runs: their files are removed and the runs are gone from every view.

    Refused while a run is still running (or its job may still write to it); a
    direct run whose process is gone (crashed) may go. On a server its shipped files,
    partial uploads and artifacts in S3 go too, and this machine's cached copies of
    it. The events that recorded the runs stay in the log (history is never
    rewritten), and a deleted run's id is never used again.

    \b
    Examples:
      whirr runs delete job-12 job-13
      whirr runs delete job-12 --yes
    """
    with open_whirr(server) as whirr:
        runs = [whirr.run(ref) for ref in run_refs]
        if not yes:
            names = ", ".join(r.id for r in runs)
            click.confirm(
                f"Delete {len(runs)} run(s) ({names}) and their files? This cannot be undone",
                abort=True,
            )
        for run in runs:
            click.echo(whirr.delete_run(run.id).message)


@click.command("clean")
@click.option(
    "--older-than",
    metavar="DURATION",
    help="Only jobs that ended at least this long ago (90s, 15m, 2h, 7d).",
)
@click.option(
    "-s",
    "--status",
    "statuses",
    multiple=True,
    type=click.Choice(_ENDED),
    help="Only jobs with this status (repeatable; default: every ended status).",
)
@click.option("--json", "as_json", is_flag=True, help="Print {cleaned: [...], count} as JSON.")
@server_option(short=False)
@user_errors
def clean_cmd(
    older_than: str | None, statuses: tuple[str, ...], as_json: bool, server: str | None
) -> None:
    """Drop ended jobs from the queue's views, as pueue's clean does.

    Cleaned jobs leave `whirr status` (its list and counts) and the job listings; their
    runs stay (`whirr runs`, `whirr show`), and `whirr status ID` still finds a job.
    Queued and running jobs are never cleaned.

    \b
    Examples:
      whirr clean                      # every ended job
      whirr clean --older-than 7d
      whirr clean -s cancelled --json
    """
    seconds = parse_duration(older_than, "--older-than") if older_than is not None else None
    with open_whirr(server) as whirr:
        answer = whirr.clean(seconds, list(statuses) or None)
    if as_json:
        emit_json(answer)
    else:
        click.echo(answer.message)


#: The subcommands of ``whirr runs``.
MANAGE_COMMANDS = (
    rename_cmd,
    tag_cmd,
    untag_cmd,
    note_cmd,
    archive_cmd,
    unarchive_cmd,
    delete_cmd,
)
