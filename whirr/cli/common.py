"""Helpers shared by the commands: error handling, options, JSON and table output."""

from __future__ import annotations

import functools
import sys
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, TypeVar

import click
import msgspec

from whirr.clock import human_duration as duration

F = TypeVar("F", bound=Callable[..., Any])

_json = msgspec.json.Encoder()


def fail(message: str) -> None:
    """Exit 1 with ``Error: message`` on stderr."""
    click.echo(f"Error: {message}", err=True)
    sys.exit(1)


def user_errors(func: F) -> F:
    """Turn whirr's known errors into ``Error: ...`` and exit 1, never a traceback."""
    from whirr.config import ConfigError
    from whirr.project import ProjectNotFound
    from whirr.services.errors import WhirrError
    from whirr.store.protocol import StoreError

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except (WhirrError, ProjectNotFound, StoreError, ConfigError) as exc:
            fail(str(exc))
        except BrokenPipeError:
            sys.stderr.close()  # output piped into `head`: stop quietly
            sys.exit(0)

    return wrapper  # type: ignore[return-value]


def emit_json(value: Any) -> None:
    """Print ``value`` as JSON (msgspec Structs and datetimes included)."""
    click.echo(_json.encode(value).decode())


def ago(at: datetime | None, now: datetime | None = None) -> str:
    """``12s ago``-style age of a timestamp."""
    if at is None:
        return "-"
    seconds = ((now or datetime.now(UTC)) - at).total_seconds()
    return f"{duration(seconds)} ago"


def print_table(headers: list[str], rows: list[list[str]]) -> None:
    """Print a plain aligned table (cheap: no rich import on the fast paths)."""
    widths = [len(h) for h in headers]
    for row in rows:
        for i, cell in enumerate(row):
            widths[i] = max(widths[i], len(cell))
    lines = ["  ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True)).rstrip()]
    for row in rows:
        lines.append("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip())
    click.echo("\n".join(lines))


#: What ``--server`` says in every command's help.
SERVER_HELP = "Talk to this whirr server (http://host:8080) instead of the local project."


def server_option(short: bool = True) -> Any:
    """``-s/--server URL`` (``WHIRR_SERVER_URL``). Commands whose ``-s`` means
    ``--status`` (as in the original whirr) take ``server_option(short=False)``."""
    names = ("-s", "--server") if short else ("--server",)
    return click.option(
        *names,
        "server",
        envvar="WHIRR_SERVER_URL",
        show_envvar=True,
        default=None,
        metavar="URL",
        help=SERVER_HELP,
    )


#: The largest id, position or count a store holds (SQLite and PostgreSQL: 64-bit).
MAX_INT64 = 2**63 - 1


# Bounds of the numbers the commands take (docs/configuration.md, "Bounds"): every
# number that reaches a process, a timer, a query or an allocation has a floor and a
# ceiling, and a float must be finite.
def count(low: int = 1, high: int = MAX_INT64) -> click.IntRange:
    """An integer option in [low, high] (default: at least 1, at most a 64-bit id)."""
    return click.IntRange(low, high)


#: Queue priority (as ``POST /jobs`` takes it).
PRIORITY = click.IntRange(-1_000_000, 1_000_000)
#: GPUs one job may ask for.
GPUS = click.IntRange(0, 64)


class Seconds(click.FloatRange):
    """A duration in seconds in [low, high]: NaN and infinity are refused (a timer that
    never fires is not a setting)."""

    name = "seconds"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        import math

        number = super().convert(value, param, ctx)
        if not math.isfinite(number):
            self.fail(f"{value!r} is not a finite number of seconds", param, ctx)
        return number


class JobRef(click.ParamType):
    """A job named as a person would: ``12``, ``#12`` or ``job-12``."""

    name = "JOB"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> int:
        if isinstance(value, int):
            return value
        from whirr.wire.refs import parse_job_ref

        try:
            return parse_job_ref(str(value))
        except ValueError as exc:
            self.fail(str(exc), param, ctx)


JOB_REF = JobRef()


class StatusChoice(click.Choice):
    """``--status``, which the original whirr also spelt ``-s``: a URL given to it gets a
    hint that ``--server`` was meant."""

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        if isinstance(value, str) and "://" in value:
            self.fail(
                f"{value!r} looks like a server URL, but here -s means --status; "
                f"use --server {value} (or set WHIRR_SERVER_URL)",
                param,
                ctx,
            )
        return super().convert(value, param, ctx)
