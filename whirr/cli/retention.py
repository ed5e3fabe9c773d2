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
    "A `whirr server` data dir whose log is SQLite (DATA_DIR/whirr.db) instead of this "
    "project; a PostgreSQL log is archived by its server (whirr server --retention)."
)


def open_local_store(data_dir: str | None) -> Any:
    """The SQLite store of this project, or of a server's data dir (checked as the
    server checks it)."""
    if data_dir is None:
        from whirr.project import find_project

        return find_project().open_store()
    from whirr.identity import DataDir, open_checked

    return open_checked(DataDir(Path(data_dir).expanduser().resolve()))


@click.group("log")
def log_cmd() -> None:
    """Retention of the event log: archive old liveness events, list the archive.

    Liveness events (worker.seen, and job.heartbeat of attempts that ended) older than
    --older-than move out of the live log into compressed, read-only segment files in
    .whirr/archive/, below a checkpoint that covers them. Nothing is deleted: `whirr
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
@user_errors
def archive_cmd(older_than: str, dry_run: bool, as_json: bool, data_dir: str | None) -> None:
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
    from whirr.store.retention_sqlite import archive

    seconds = parse_duration(older_than, "--older-than")
    tell = _progress if sys.stderr.isatty() and not as_json else None
    store = open_local_store(data_dir)
    try:
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
    where = f" into {len(report.segments)} segment(s) ({report.bytes:,} bytes)"
    click.echo(
        f"Archived {report.archived} event(s) ({kinds}){where if report.segments else ''} "
        f"below the checkpoint at position {report.checkpoint} in {elapsed:.2f}s; "
        f"{report.live} event(s) live, {report.live_liveness} of them liveness"
    )


@log_cmd.command("segments")
@click.option("--json", "as_json", is_flag=True, help="One JSON object per segment.")
@click.option("-d", "--data-dir", default=None, metavar="DIR", help=_DATA_DIR_HELP)
@user_errors
def segments_cmd(as_json: bool, data_dir: str | None) -> None:
    """List the archive segments: which positions each holds, and where it is."""
    from whirr.store.retention_segments import segments

    store = open_local_store(data_dir)
    try:
        found = segments(store.path)
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
