"""``whirr events`` and ``whirr rebuild``: the event log itself."""

from __future__ import annotations

import time

import click
import msgspec

from whirr.cli.common import local_time, project_store, user_errors


@click.command("events")
@click.option("-f", "--follow", is_flag=True, help="Keep printing new events (Ctrl+C stops).")
@click.option("--stream", default=None, help="Only this stream, e.g. job-42 or run-job-42.")
@click.option("--type", "types", multiple=True, help="Only this event type (repeatable).")
@click.option(
    "--after",
    type=click.IntRange(min=0),
    default=None,
    help="Start after this position (default: the last --limit events).",
)
@click.option(
    "-n",
    "--limit",
    type=click.IntRange(min=1),
    default=50,
    show_default=True,
    help="How many past events to print first.",
)
@click.option("--json", "as_json", is_flag=True, help="One JSON object per line.")
@user_errors
def events_cmd(
    follow: bool,
    stream: str | None,
    types: tuple[str, ...],
    after: int | None,
    limit: int,
    as_json: bool,
) -> None:
    """Print the event log: every state change whirr recorded, in order.

    \b
    Examples:
      whirr events                 # the last 50 events
      whirr events --stream job-3  # everything that happened to job 3
      whirr events -f --json       # follow as JSON lines
    """
    from whirr.events import TAGS

    unknown = sorted(set(types) - set(TAGS.values()))
    if unknown:
        raise click.BadParameter(
            f"unknown type(s) {', '.join(unknown)}; known: " + ", ".join(sorted(TAGS.values())),
            param_hint="--type",
        )
    encoder = msgspec.json.Encoder()
    with project_store() as (_, store):
        if after is None:
            found = store.read(0, stream=stream, types=list(types) or None)
            records = found[-limit:]
            cursor = store.head()
        else:
            records = store.read(after, limit=limit, stream=stream, types=list(types) or None)
            cursor = records[-1].position if records else after
        try:
            while True:
                for rec in records:
                    if as_json:
                        click.echo(encoder.encode(rec).decode())
                    else:
                        fields = msgspec.json.encode(rec.event).decode()
                        click.echo(
                            f"{rec.position:>7}  {local_time(rec.recorded_at)}  "
                            f"{rec.stream:<16} {fields}"
                        )
                if not follow:
                    return
                store.wait(cursor, timeout=1.0)
                records = store.read(cursor, stream=stream, types=list(types) or None)
                cursor = store.head() if not records else records[-1].position
        except KeyboardInterrupt:
            return


@click.command("rebuild")
@user_errors
def rebuild_cmd() -> None:
    """Rebuild the job, run and worker views by replaying the whole event log.

    Safe at any time: the log is the truth and the views are derived from it.
    """
    with project_store() as (_, store):
        started = time.perf_counter()
        count = store.rebuild()
        elapsed = time.perf_counter() - started
    click.echo(f"Rebuilt views from {count} events in {elapsed:.2f}s")
