"""``whirr repair``: void the events of the log that do not decode (fixing forward)."""

from __future__ import annotations

import click

from whirr.cli.common import user_errors


@click.command("repair")
@click.option(
    "--reason",
    default="does not decode; voided by whirr repair",
    show_default=True,
    help="Why, recorded in the log.voided event.",
)
@click.option("-n", "--dry-run", is_flag=True, help="List what would be voided; change nothing.")
@user_errors
def repair_cmd(reason: str, dry_run: bool) -> None:
    """Void the events of the log that do not decode, and rebuild the views.

    An event that does not decode (written by an older whirr's bug, a hand edit or a
    newer whirr) is skipped by every command, which warns about it once. This appends
    one log.voided event naming their positions, after which they are skipped without
    a warning; the log itself is never rewritten. `whirr doctor` lists them first.
    Local projects only: on a server, run it on the server's machine.

    \b
    Examples:
      whirr repair --dry-run
      whirr repair --reason "sweep options of whirr 0.9"
    """
    from whirr.project import find_project
    from whirr.store.repair import unreadable_events, void_unreadable

    store = find_project().open_store()
    try:
        if dry_run:
            found = unreadable_events(store)
            for rec in found:
                event = rec.event
                click.echo(f"{rec.position:>7}  {rec.stream:<16} {event.event_type}: {event.error}")  # type: ignore[attr-defined]
            click.echo(f"{len(found)} event(s) would be voided")
            return
        positions = void_unreadable(store, reason)
    finally:
        store.close()
    if positions:
        shown = ", ".join(map(str, positions[:20])) + (" ..." if len(positions) > 20 else "")
        click.echo(f"Voided {len(positions)} event(s) at position(s) {shown}; views rebuilt")
    else:
        click.echo("Nothing to repair: every event of the log decodes (or was voided)")
