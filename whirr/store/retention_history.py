"""The log as it was written: the live table merged, by position, with the archive
segments retention moved liveness events into. A full replay (``rebuild --full``, or a
rebuild whose checkpoints were all deleted or ignored) reads through this, so it folds
exactly the events a replay of the never-archived log would have folded.

Reads come in batches (``read(after, limit)``) with ``after`` moving forward, as a
streaming replay asks; each segment is read once, through a cursor kept between calls,
so a replay costs one pass over each segment whatever the batch size. Memory: a batch
per segment cursor.
"""

from __future__ import annotations

import os
from collections import deque
from collections.abc import Iterator, Sequence
from datetime import datetime, timedelta
from typing import Protocol

from whirr.clock import UTC
from whirr.events import Recorded
from whirr.store.guard import decode_stored
from whirr.store.retention_segments import Line, Segment, read, segments

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


class LogReader(Protocol):
    """What the history reads of a store: its database path and its live log."""

    path: str

    def read(self, after: int = 0, limit: int | None = None) -> list[Recorded]: ...


class _Cursor:
    """A segment read forward: lines not yet consumed (a position > the last ``after``)."""

    def __init__(self, segment: Segment) -> None:
        self.segment = segment
        self._rewind()

    def _rewind(self) -> None:
        self._lines: Iterator[Line] = read(self.segment)
        self._buffer: deque[Line] = deque()
        self._after = 0
        self._done = False

    def ahead(self, after: int, limit: int, bound: int | None) -> list[Line]:
        """Up to ``limit`` lines after ``after`` (and up to ``bound``), not consumed."""
        if after < self._after:  # asked to go back: read the segment again
            self._rewind()
        self._after = after
        while self._buffer and self._buffer[0].position <= after:
            self._buffer.popleft()
        while not self._done and len(self._buffer) < limit:
            if self._buffer and bound is not None and self._buffer[-1].position > bound:
                break
            line = next(self._lines, None)
            if line is None:
                self._done = True
            elif line.position > after:
                self._buffer.append(line)
        found: list[Line] = []
        for line in self._buffer:
            if len(found) >= limit or (bound is not None and line.position > bound):
                break
            found.append(line)
        return found


class History:
    """Batches of the whole log (live and archived) of one SQLite store, by position."""

    def __init__(self, store: LogReader) -> None:
        self.store = store
        self._cursors: dict[str, _Cursor] = {}

    def read(self, after: int, limit: int) -> list[Recorded]:
        """Up to ``limit`` events with a position above ``after``, in position order."""
        live = self.store.read(after=after, limit=limit)
        later = [s for s in segments(self.store.path) if s.last > after]
        if not later:
            return live
        # With a full batch of live rows, no archived event beyond its last is needed.
        bound = live[-1].position if len(live) >= limit else None
        archived: list[Line] = []
        for segment in later:
            cursor = self._cursors.get(segment.name)
            if cursor is None:
                cursor = self._cursors[segment.name] = _Cursor(segment)
            archived.extend(cursor.ahead(after, limit, bound))
        if not archived:
            return live
        taken = {rec.position for rec in live}
        archived = sorted((a for a in archived if a.position not in taken), key=_position)
        # Two segments may hold one event (a pass finishing a segment a backup copied
        # before its rows left, then writing it again): read once.
        archived = [
            a for i, a in enumerate(archived) if i == 0 or a.position != archived[i - 1].position
        ]
        merged = sorted([*live, *_recorded(archived)], key=lambda r: r.position)
        return merged[:limit]

    def close(self) -> None:
        self._cursors.clear()


def _position(line: Line) -> int:
    return line.position


def _recorded(lines: Sequence[Line]) -> list[Recorded]:
    events = decode_stored([bytes(line.data) for line in lines])
    return [
        Recorded(line.position, _EPOCH + timedelta(microseconds=line.recorded_us), line.stream, e)
        for line, e in zip(lines, events, strict=True)
    ]


def archived(store: LogReader) -> list[Segment]:
    """The store's archive segments (empty for a store without a database file)."""
    path = getattr(store, "path", None)
    return segments(path) if isinstance(path, str) and os.path.isabs(path) else []
