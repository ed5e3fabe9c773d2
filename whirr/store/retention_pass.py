"""One retention pass, whatever the backend: the liveness events the policy lets go
(``whirr.store.retention``) move from the live log into archive segments
(``retention_segments``), below a checkpoint that covers them. ``retention_sqlite`` and
``retention_postgres`` give it their log (``PassLog``); the order and its safety are
the same on both.

The order of a pass, each step safe to be interrupted:

1. finish what a killed pass left (a pending segment: its rows leave the live table, if
   still there, and it is sealed);
2. take a checkpoint at the head (a replay, as every checkpoint): position P. Only events
   below P may go, so a rebuild from that checkpoint, or any later one, never needs them;
   the events at the positions of the checkpoints kept stay too (their stamps name them);
3. walk the live log below P along its primary key, choosing the liveness events old
   enough (and, for heartbeats, of an ended attempt), ``chunk`` events per segment: write
   the segment (fsynced), delete its rows in one short write transaction, seal it.

Positions do not change: rows are deleted, never renumbered, and the head (the newest
event) never goes, so the next position stays max + 1 and is never one given out
before. A full replay merges the segments back by position (``retention_history``).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Protocol

import msgspec

from whirr.clock import utc_now
from whirr.projections import JobView
from whirr.store import retention_segments as files
from whirr.store.protocol import StoreError
from whirr.store.retention import (
    DEFAULT_OLDER_THAN,
    attempt_ended,
    cutoff,
    heartbeat_attempt,
)

#: Events per segment file (~2-4 MB compressed); also the most deleted in one transaction.
CHUNK = 100_000
#: Candidate rows read per query while walking the log.
PAGE = 20_000

#: Told ``(scanned up to position, of positions below, events archived so far)``.
Progress = Callable[[int, int, int], None]
#: A candidate row: position, recorded time (µs since the epoch), stream, type, data.
Row = tuple[int, int, str, str, bytes]


class PassLog(Protocol):
    """What a pass needs of a backend's log."""

    #: Where segments go: ``archive/`` beside this path (``retention_segments``).
    path: str

    def head(self) -> int: ...

    def checkpoint(self) -> int:
        """Take a checkpoint at the head (a replay); its position."""
        ...

    def kept(self) -> set[int]:
        """Positions that must stay live: those the kept checkpoints' stamps name."""
        ...

    def candidates(self, after: int, below: int, cutoff_us: int, limit: int) -> list[Row]:
        """Liveness events recorded before ``cutoff_us`` at positions in
        ``(after, below)``, in position order, at most ``limit``."""
        ...

    def job(self, job_id: int) -> JobView | None: ...

    def remove(self, segment: files.Segment, positions: list[int]) -> None:
        """Delete the liveness rows at ``positions`` (the written segment's) in one
        transaction; a row already gone is simply not there."""
        ...

    def live_counts(self) -> tuple[int, int]:
        """Events live, and of them liveness events."""
        ...


@dataclass
class Report:
    """What a pass did (or, with ``dry_run``, would do)."""

    dry_run: bool
    #: The checkpoint covering the archived events (the head, for a dry run).
    checkpoint: int
    cutoff: datetime
    archived: int = 0
    by_type: dict[str, int] = field(default_factory=dict)
    segments: list[str] = field(default_factory=list)
    #: Compressed bytes written.
    bytes: int = 0
    #: Segments a killed pass left pending, finished first.
    finished: int = 0
    #: Live events left, and of them liveness events.
    live: int = 0
    live_liveness: int = 0

    def as_json(self) -> dict[str, Any]:
        out: dict[str, Any] = msgspec.to_builtins(self.__dict__)
        return out


class Busy(StoreError):
    """Another retention pass (or a backup) holds the log's archive."""


@contextlib.contextmanager
def exclusive(path: str) -> Iterator[None]:
    """One pass at a time per log (a server's schedule and a CLI run): two passes would
    write the same events into two segments. A backup holds the same lock."""
    try:
        with files.held(path, wait=False):
            yield
    except files.Held as held:
        raise Busy(f"another retention pass or a backup holds {held}; try again later") from None


def run_pass(
    log: PassLog,
    *,
    older_than: timedelta = DEFAULT_OLDER_THAN,
    now: datetime | None = None,
    dry_run: bool = False,
    chunk: int = CHUNK,
    progress: Progress | None = None,
) -> Report:
    """Move the liveness events the policy lets go into archive segments (``dry_run``:
    count them, change nothing, take no checkpoint); returns what was done."""
    until = cutoff(now or utc_now(), older_than)
    with exclusive(log.path):
        files.remove_scratches(log.path)
        finished = 0 if dry_run else _finish_pending(log)
        below = log.head() if dry_run else log.checkpoint()
        report = Report(dry_run=dry_run, checkpoint=below, cutoff=until, finished=finished)
        kept = log.kept() | {1}
        lines: list[files.Line] = []
        for line in _candidates(log, below, until, kept, progress, report):
            report.archived += 1
            report.by_type[line.type] = report.by_type.get(line.type, 0) + 1
            if dry_run:
                continue
            lines.append(line)
            if len(lines) >= chunk:
                _move(log, lines, report)
                lines = []
        if lines:
            _move(log, lines, report)
    report.live, report.live_liveness = log.live_counts()
    return report


def _candidates(
    log: PassLog,
    below: int,
    until: datetime,
    kept: set[int],
    progress: Progress | None,
    report: Report,
) -> Iterator[files.Line]:
    """The events below ``below`` that may go, in position order."""
    ended: dict[tuple[int, int], bool] = {}
    views: dict[int, JobView | None] = {}
    after = 0
    cut = _us(until)
    while True:
        rows = log.candidates(after, below, cut, PAGE)
        if not rows:
            break
        for position, us, stream, kind, data in rows:
            raw = data if isinstance(data, bytes) else str(data).encode()
            if position in kept:
                continue
            if kind == "job.heartbeat":
                found = heartbeat_attempt(raw)
                if found is None:
                    continue
                if found not in ended:
                    job_id = found[0]
                    if job_id not in views:
                        views[job_id] = log.job(job_id)
                    ended[found] = attempt_ended(views[job_id], found[1])
                if not ended[found]:
                    continue
            yield files.Line(position, us, stream, kind, msgspec.Raw(raw))
        after = rows[-1][0]
        if progress is not None:
            progress(after, below, report.archived)
    if progress is not None:
        progress(below, below, report.archived)


def _us(at: datetime) -> int:
    delta = at - datetime(1970, 1, 1, tzinfo=at.tzinfo)
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


def _move(log: PassLog, lines: list[files.Line], report: Report) -> None:
    """One segment: written and on disk, then its rows out of the live log, then sealed."""
    segment = files.write(log.path, lines)
    log.remove(segment, [line.position for line in lines])
    sealed = files.seal(segment)
    report.segments.append(sealed.name)
    report.bytes += sealed.path.stat().st_size


def _finish_pending(log: PassLog) -> int:
    """Segments a killed pass wrote but did not seal: their rows leave the live table
    (those still there) and they are sealed."""
    done = 0
    for segment in files.segments(log.path):
        if segment.pending:
            log.remove(segment, files.positions(segment))
            files.seal(segment)
            done += 1
    return done
