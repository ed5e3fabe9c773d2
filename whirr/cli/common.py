"""Helpers shared by the commands: error handling, the project's store, JSON output."""

from __future__ import annotations

import functools
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any, TypeVar

import click
import msgspec

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


@contextmanager
def project_store() -> Iterator[tuple[Any, Any]]:
    """The current project and its open store."""
    from whirr.project import find_project

    project = find_project()
    store = project.open_store()
    try:
        yield project, store
    finally:
        store.close()


def emit_json(value: Any) -> None:
    """Print ``value`` as JSON (msgspec Structs and datetimes included)."""
    click.echo(_json.encode(value).decode())


def ago(at: datetime | None, now: datetime | None = None) -> str:
    """``12s ago``-style age of a timestamp."""
    if at is None:
        return "-"
    seconds = ((now or datetime.now(UTC)) - at).total_seconds()
    return f"{duration(seconds)} ago"


def duration(seconds: float | None) -> str:
    """Compact duration: ``850ms``, ``42s``, ``3m12s``, ``2h05m``."""
    if seconds is None:
        return "-"
    if seconds < 1:
        return f"{seconds * 1000:.0f}ms"
    if seconds < 60:
        return f"{seconds:.1f}s" if seconds < 10 else f"{seconds:.0f}s"
    minutes, secs = divmod(int(seconds), 60)
    if minutes < 60:
        return f"{minutes}m{secs:02d}s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m"


def local_time(at: datetime | None) -> str:
    """A timestamp in local time, to the second."""
    return "-" if at is None else at.astimezone().strftime("%Y-%m-%d %H:%M:%S")


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
