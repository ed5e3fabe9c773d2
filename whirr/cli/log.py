"""``whirr events`` and ``whirr rebuild``: the event log itself."""

from __future__ import annotations

import itertools
import time
from typing import Any

import click
import msgspec

from whirr.cli.common import count, server_option, user_errors
from whirr.clock import local_time
from whirr.facade import open_whirr


@click.command("events")
@click.option("-f", "--follow", is_flag=True, help="Keep printing new events (Ctrl+C stops).")
@click.option("--stream", default=None, help="Only this stream, e.g. job-42 or run-job-42.")
@click.option("--type", "types", multiple=True, help="Only this event type (repeatable).")
@click.option(
    "--after",
    type=count(0),
    default=None,
    help="Start after this position (default: the last --limit events).",
)
@click.option(
    "-n",
    "--limit",
    type=count(),
    default=50,
    show_default=True,
    help="How many past events to print first.",
)
@click.option(
    "--json",
    "as_json",
    is_flag=True,
    help="One JSON object per line: {position, recorded_at, stream, type, event}.",
)
@click.option(
    "--archived",
    is_flag=True,
    help="Read the log as written, the liveness events `whirr log archive` moved out "
    "included (this project only): --limit events from --after (default 0).",
)
@server_option()
@user_errors
def events_cmd(
    follow: bool,
    stream: str | None,
    types: tuple[str, ...],
    after: int | None,
    limit: int,
    as_json: bool,
    archived: bool,
    server: str | None,
) -> None:
    """Print the event log: every state change whirr recorded, in order.

    \b
    Examples:
      whirr events                 # the last 50 events
      whirr events --stream job-3  # everything that happened to job 3
      whirr events -f --json       # follow as JSON lines
      whirr events --server http://head:8080 --type job.finished
      whirr events --archived --after 1000 -n 20  # archived liveness events too
    """
    from whirr.events import TAGS

    unknown = sorted(set(types) - set(TAGS.values()))
    if unknown:
        raise click.BadParameter(
            f"unknown type(s) {', '.join(unknown)}; known: " + ", ".join(sorted(TAGS.values())),
            param_hint="--type",
        )
    encoder = msgspec.json.Encoder()
    if archived:
        if server:
            raise click.UsageError(
                "--archived reads a project's archive; on a server, run it on the server's "
                "machine: whirr log segments --data-dir DIR (--database-url URL for a PostgreSQL "
                "log) lists the segment files"
            )
        _print(_as_written(after or 0, limit, stream, list(types) or None), as_json)
        return
    positions: list[int] = []
    note: str | None = None
    with open_whirr(server) as whirr:
        found = whirr.events(
            after or 0,
            follow=follow,
            types=list(types) or None,
            stream=stream,
            last=limit if after is None else None,
        )
        # --after N: at most --limit events after N (all of them, then new ones, with -f).
        shown = found if follow or after is None else itertools.islice(found, limit)
        try:
            for event in shown:
                if not positions:
                    positions.append(event.position)
                if as_json:
                    click.echo(encoder.encode(event).decode())
                else:
                    fields = encoder.encode(event.event).decode()
                    click.echo(
                        f"{event.position:>7}  {local_time(event.recorded_at)}  "
                        f"{event.stream:<16} {fields}"
                    )
        except KeyboardInterrupt:
            return
        if not as_json and positions:
            note = _where_archived(whirr, positions[0], remote=server is not None)
    if note:
        click.echo(note, err=True)


def _as_written(after: int, limit: int, stream: str | None, types: list[str] | None) -> list[Any]:
    """Up to ``limit`` events after ``after`` of the log as written (live and archived
    merged by position), filtered by ``stream`` and ``types``."""
    from whirr.events import tag_of
    from whirr.project import find_project
    from whirr.store.retention_history import History
    from whirr.wire import schemas

    store = find_project().open_store()
    try:
        history = History(store)
        found: list[Any] = []
        while len(found) < limit and (batch := history.read(after, 5_000)):
            after = batch[-1].position
            found += [
                rec
                for rec in batch
                if (stream is None or rec.stream == stream)
                and (types is None or tag_of(rec.event) in types)
            ]
        return [
            schemas.EventOut(
                position=rec.position,
                recorded_at=rec.recorded_at,
                stream=rec.stream,
                type=tag_of(rec.event),
                event=msgspec.to_builtins(rec.event),
            )
            for rec in found[:limit]
        ]
    finally:
        store.close()


def _print(found: list[Any], as_json: bool) -> None:
    encoder = msgspec.json.Encoder()
    for event in found:
        if as_json:
            click.echo(encoder.encode(event).decode())
        else:
            fields = encoder.encode(event.event).decode()
            click.echo(
                f"{event.position:>7}  {local_time(event.recorded_at)}  {event.stream:<16} {fields}"
            )


def _where_archived(whirr: Any, first: int, *, remote: bool) -> str | None:
    """Where the liveness events archived at or after ``first`` went (a line for
    stderr), or None. A server that does not answer ``GET /log/archive`` (an older
    one) or cannot read its archive is not worth failing the listing for."""
    from whirr.services.errors import WhirrError

    try:
        archive = whirr.log_archive()
    except (WhirrError, OSError):
        return None
    found = [s for s in archive.segments if s.last >= first]
    if not found:
        return None
    how = (
        "on the server's machine, `whirr log segments -d DATA_DIR` lists them"
        if remote
        else "whirr events --archived shows them"
    )
    return (
        f"Note: old liveness events (worker.seen, heartbeats of ended attempts) between "
        f"positions {found[0].first} and {found[-1].last} are archived in "
        f"{len(found)} segment(s) in {archive.directory}; {how}"
    )


@click.command("rebuild")
@click.option(
    "--full",
    is_flag=True,
    help="Replay the whole log from position 0, ignoring checkpoints.",
)
@server_option()
@user_errors
def rebuild_cmd(full: bool, server: str | None) -> None:
    """Rebuild the job, run and worker views by replaying the event log.

    Safe at any time: the log is the truth and the views are derived from it. Starts
    from the newest valid checkpoint (the views at some earlier position, in
    .whirr/checkpoints/) and replays only the events after it, streaming in batches;
    --full replays from position 0. A checkpoint written by another version of whirr,
    for another log, or damaged is ignored with a warning, never trusted. A new
    checkpoint is written at the end (a project also takes one every 100,000 events by
    itself), and a project's write lock is held only for the final copy of the views.
    Only where the log is stored: a server's views are rebuilt on the server's machine.
    """
    with open_whirr(server) as whirr:
        started = time.perf_counter()
        count = whirr.rebuild(full=full)
        elapsed = time.perf_counter() - started
    how = " (a full replay from position 0)" if full else ""
    click.echo(f"Rebuilt views from {count} events{how} in {elapsed:.2f}s")
