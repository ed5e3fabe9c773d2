"""``whirr log archive`` and ``whirr log segments``: retention of the event log (the
policy: docs/architecture.md, "Retention")."""

from __future__ import annotations

import sys
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

import click

from whirr.cli.common import emit_json, user_errors

_DATA_DIR_HELP = (
    "A `whirr server` data dir instead of this project: its log (DATA_DIR/whirr.db, or "
    "the database of --database-url) and DATA_DIR/archive."
)
_DATABASE_URL_HELP = (
    "With --data-dir: the PostgreSQL log of that data dir's server (the URL `whirr server "
    "--database-url` was given)."
)


def _database_url_option(fn: Any) -> Any:
    return click.option(
        "--database-url",
        envvar="WHIRR_DATABASE_URL",
        show_envvar=True,
        metavar="URL",
        help=_DATABASE_URL_HELP,
    )(fn)


def open_local_store(data_dir: str | None, database_url: str | None = None) -> Any:
    """The store of this project, or of a server's data dir (checked as the server checks
    it): SQLite in DATA_DIR/whirr.db, or the PostgreSQL log ``database_url`` names, whose
    archive is DATA_DIR/archive as the server's (``archive_anchor``)."""
    if data_dir is None:
        if database_url and _given_on_command_line("database_url"):
            raise click.UsageError("--database-url names a server's log: give its --data-dir too")
        from whirr.project import find_project

        return find_project().open_store()
    from whirr.identity import DataDir, open_checked, read_project_id
    from whirr.store.protocol import StoreError

    root = Path(data_dir).expanduser().resolve()
    if database_url:
        return _open_postgres(root, database_url)
    place = DataDir(root)
    if not place.db_path.exists() and read_project_id(place) is not None:
        # A server on PostgreSQL keeps no whirr.db: saying "missing, start over" here
        # would send its owner the wrong way.
        raise StoreError(
            f"{root} has no whirr.db: if its server's log is in PostgreSQL, give its URL "
            "with --database-url URL (or WHIRR_DATABASE_URL) as `whirr server` was given it"
        )
    return open_checked(place)


def _open_postgres(root: Path, database_url: str) -> Any:
    """The PostgreSQL store of the server whose data dir is ``root``, checked to be the
    history the data dir's ``project-id`` names, its archive in ``root/archive``."""
    from whirr.identity import DataDir, check_store, read_project_id
    from whirr.store import StoreError, open_store

    place = DataDir(root, database_url)
    if read_project_id(place) is None:
        # Never give a data dir an id here: that is the server's first start.
        raise StoreError(
            f"{root} is not the data dir of a server on PostgreSQL (it has no project-id): "
            f"start `whirr server -d {root} --database-url URL` once first"
        )
    store = open_store(database_url)
    try:
        check_store(place, store)
    except BaseException:
        store.close()
        raise
    store.archive_anchor = str(root / "whirr.db")  # type: ignore[attr-defined]
    return store


def archive_anchor(store: Any) -> str:
    """Where ``store``'s segments live (``archive/`` beside it)."""
    from whirr.store.retention_segments import anchor_of

    anchor = anchor_of(store)
    assert anchor is not None  # a project's or a data dir's store: both have one
    return anchor


def _given_on_command_line(name: str) -> bool:
    from click.core import ParameterSource

    ctx = click.get_current_context()
    return ctx.get_parameter_source(name) is ParameterSource.COMMANDLINE


@click.group("log")
def log_cmd() -> None:
    """Retention of the event log: archive old liveness events, list the archive.

    Liveness events (worker.seen, and job.heartbeat of attempts that ended) older than
    --older-than move out of the live log into compressed, read-only segment files in
    .whirr/archive/ (a server's: DATA_DIR/archive/, whether its log is SQLite or
    PostgreSQL), below a checkpoint that covers them. Nothing is deleted: `whirr
    events --archived` reads them back and `whirr rebuild --full` replays them. Every
    other event (submits, claims, ends, summaries, run management) stays live.
    """


@log_cmd.command("archive")
@click.option(
    "--older-than",
    metavar="DURATION",
    default="7d",
    show_default=True,
    help="Archive liveness events at least this old (12h, 7d, 30d).",
)
@click.option("-n", "--dry-run", is_flag=True, help="Count what would go; change nothing.")
@click.option("--json", "as_json", is_flag=True, help="Print what was done as one JSON object.")
@click.option("-d", "--data-dir", default=None, metavar="DIR", help=_DATA_DIR_HELP)
@_database_url_option
@user_errors
def archive_cmd(
    older_than: str, dry_run: bool, as_json: bool, data_dir: str | None, database_url: str | None
) -> None:
    """Move old liveness events of the log into archive segments.

    Takes a checkpoint first (the views at the head), so a rebuild never needs what
    moved; then walks the live log and writes one segment per 100,000 events. Safe to
    interrupt (the next run finishes a half-done segment) and to run while workers and
    the server write. Progress goes to stderr on a terminal. A server runs this by
    itself with `whirr server --retention`.

    \b
    Examples:
      whirr log archive --dry-run
      whirr log archive --older-than 30d --json
    """
    from whirr.cli.scheduling import parse_duration
    from whirr.store.retention_archive import archive
    from whirr.store.retention_segments import directory

    seconds = parse_duration(older_than, "--older-than")
    tell = _progress if sys.stderr.isatty() and not as_json else None
    store = open_local_store(data_dir, database_url)
    try:
        where = directory(archive_anchor(store))
        started = time.perf_counter()
        report = archive(
            store, older_than=timedelta(seconds=seconds), dry_run=dry_run, progress=tell
        )
        elapsed = time.perf_counter() - started
    finally:
        store.close()
    if tell is not None:
        click.echo("", err=True)
    if as_json:
        emit_json(report.as_json() | {"seconds": round(elapsed, 3)})
        return
    kinds = ", ".join(f"{n} {kind}" for kind, n in sorted(report.by_type.items())) or "none"
    if dry_run:
        click.echo(
            f"Would archive {report.archived} event(s) below position {report.checkpoint} "
            f"recorded before {report.cutoff:%Y-%m-%d %H:%M} UTC ({kinds}); nothing changed"
        )
        return
    into = f" into {len(report.segments)} segment(s) in {where} ({report.bytes:,} bytes)"
    click.echo(
        f"Archived {report.archived} event(s) ({kinds}){into if report.segments else ''} "
        f"below the checkpoint at position {report.checkpoint} in {elapsed:.2f}s; "
        f"{report.live} event(s) live, {report.live_liveness} of them liveness"
    )


@log_cmd.command("segments")
@click.option("--json", "as_json", is_flag=True, help="One JSON object per segment.")
@click.option("-d", "--data-dir", default=None, metavar="DIR", help=_DATA_DIR_HELP)
@_database_url_option
@user_errors
def segments_cmd(as_json: bool, data_dir: str | None, database_url: str | None) -> None:
    """List the archive segments: which positions each holds, and where it is."""
    from whirr.store.retention_segments import segments

    store = open_local_store(data_dir, database_url)
    try:
        found = segments(archive_anchor(store))
    finally:
        store.close()
    for segment in found:
        row = {
            "first": segment.first,
            "last": segment.last,
            "path": str(segment.path),
            "bytes": segment.path.stat().st_size,
            "pending": segment.pending,
        }
        if as_json:
            emit_json(row)
        else:
            note = (
                "  (pending: the next `whirr log archive` finishes it)" if segment.pending else ""
            )
            click.echo(
                f"{segment.first:>9}-{segment.last:<9} {row['bytes']:>10,}  {segment.path}{note}"
            )
    if not found and not as_json:
        click.echo("No archive segments (nothing was archived)")


def _progress(scanned: int, below: int, archived: int) -> None:
    share = 100 * scanned // below if below else 100
    click.echo(
        f"\rscanned {share:3d}% of the log, {archived:,} event(s) to archive", err=True, nl=False
    )
