"""The wall clock, in one place so tests can pass another."""

from __future__ import annotations

from datetime import UTC, datetime


def utc_now() -> datetime:
    """The current UTC time, to the microsecond (what the log records)."""
    return datetime.now(UTC)
