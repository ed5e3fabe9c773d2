"""The wall clock, in one place so tests can pass another."""

from __future__ import annotations

from datetime import datetime, timezone

#: ``datetime.UTC`` is Python 3.11+; the tracking library (and all it imports) also runs
#: on 3.10 (docs/python-api.md), so modules it imports take UTC from here.
UTC = timezone.utc  # noqa: UP017


def utc_now() -> datetime:
    """The current UTC time, to the microsecond (what the log records)."""
    return datetime.now(UTC)


def human_duration(seconds: float | None) -> str:
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
    """A timestamp in the machine's local time, to the second (``-`` for none)."""
    return "-" if at is None else at.astimezone().strftime("%Y-%m-%d %H:%M:%S")
