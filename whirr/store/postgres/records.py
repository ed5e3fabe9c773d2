"""Event rows of the PostgreSQL log as records."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC
from typing import Any

from whirr.events import Recorded
from whirr.store.guard import decode_stored, typed


def recorded_rows(
    rows: list[tuple[Any, ...]], types: Sequence[str] | None = None
) -> list[Recorded]:
    """Event rows as records (an ``Unreadable`` stand-in where one does not decode, left
    out of a read filtered by ``types``)."""
    events = decode_stored([row[3] for row in rows])
    return [
        Recorded(int(position), recorded_at.astimezone(UTC), stream, event)
        for (position, recorded_at, stream, _), event, keep in zip(
            rows, events, typed(events, types), strict=True
        )
        if keep
    ]
