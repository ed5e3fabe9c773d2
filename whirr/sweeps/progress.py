"""A sweep's record folded from its stream, its progress and its best run. Pure."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

import msgspec

from whirr.events import (
    Recorded,
    SweepCreated,
    SweepFailFastCleared,
    SweepJobAdded,
    SweepPaused,
    SweepResumed,
)

#: Job status -> the progress column it counts in.
COLUMNS = {
    "queued": "queued",
    "running": "running",
    "completed": "done",
    "failed": "failed",
    "timed_out": "failed",
    "cancelled": "cancelled",
}


class Member(msgspec.Struct, frozen=True):
    """A job of the sweep."""

    index: int
    job_id: int
    config: dict[str, Any]


class SweepRecord(msgspec.Struct, frozen=True, kw_only=True):
    """What the log knows about one sweep."""

    created: SweepCreated
    created_at: datetime
    position: int
    members: list[Member] = []
    #: Why the sweep is paused (fail-fast held its queued jobs); None: not paused.
    paused: SweepPaused | None = None
    #: The fail-fast rule: ``watching`` (not decided yet), ``cleared`` (the first ends
    #: were not identical failures), ``paused``, ``resumed`` (paused once, then resumed)
    #: or ``off``.
    fail_fast: str = "watching"

    @property
    def name(self) -> str:
        """The sweep's name (its jobs are ``<name>-<i>``)."""
        return self.created.sweep


class Progress(msgspec.Struct, frozen=True):
    """How far a sweep got: jobs planned, queued so far, and per status."""

    planned: int
    submitted: int
    queued: int = 0
    running: int = 0
    done: int = 0
    failed: int = 0
    cancelled: int = 0
    #: Fail-fast paused the sweep: its queued jobs are held until it is resumed.
    paused: bool = False
    #: A bayes sweep: its points are queued as its jobs end, so fewer queued than
    #: planned is its normal state while some run.
    proposes: bool = False

    @property
    def finished(self) -> int:
        """Jobs that ended, whatever the outcome."""
        return self.done + self.failed + self.cancelled

    @property
    def state(self) -> str:
        """One word: ``incomplete`` (not every job queued: still submitting, or
        interrupted, or a bayes sweep with nothing running that stopped proposing;
        ``whirr sweep resume`` finishes it), ``paused`` (fail-fast held its
        jobs; ``whirr sweep resume`` releases them), ``active`` or ``finished``."""
        if self.proposes and self.paused and self.finished < self.planned:
            return "paused"
        if self.proposes and self.submitted < self.planned and self.queued + self.running:
            return "active"  # each end proposes the next point
        if self.submitted < self.planned:
            return "incomplete"
        if self.finished == self.planned:
            return "finished"
        return "paused" if self.paused else "active"


def fold(records: Sequence[Recorded]) -> SweepRecord | None:
    """The sweep whose stream is ``records`` (None before it was created)."""
    record: SweepRecord | None = None
    for rec in records:
        event = rec.event
        if isinstance(event, SweepCreated):
            record = SweepRecord(
                created=event,
                created_at=rec.recorded_at,
                position=rec.position,
                fail_fast="watching" if event.fail_fast > 0 else "off",
            )
        elif record is None:
            continue
        elif isinstance(event, SweepJobAdded):
            member = Member(event.index, event.job_id, event.config)
            record = msgspec.structs.replace(record, members=[*record.members, member])
        elif isinstance(event, SweepPaused):
            record = msgspec.structs.replace(record, paused=event, fail_fast="paused")
        elif isinstance(event, SweepFailFastCleared):
            record = msgspec.structs.replace(record, fail_fast="cleared")
        elif isinstance(event, SweepResumed) and record.paused is not None:
            record = msgspec.structs.replace(record, paused=None, fail_fast="resumed")
    return record


def progress(record: SweepRecord, statuses: Mapping[int, str]) -> Progress:
    """Count the sweep's jobs by status (``statuses``: job id -> status)."""
    counts = dict.fromkeys(("queued", "running", "done", "failed", "cancelled"), 0)
    for member in record.members:
        column = COLUMNS.get(statuses.get(member.job_id, ""))
        if column is not None:
            counts[column] += 1
    return Progress(
        planned=record.created.planned,
        submitted=len(record.members),
        paused=record.paused is not None,
        proposes=record.created.method == "bayes",
        **counts,
    )


def best(values: Sequence[tuple[Member, float | None]], goal: str) -> tuple[Member, float] | None:
    """The member with the best value (lowest when minimizing); ties go to the earliest."""
    scored = [(m, v) for m, v in values if v is not None]
    if not scored:
        return None
    sign = 1.0 if goal == "minimize" else -1.0
    return min(scored, key=lambda mv: (sign * mv[1], mv[0].index))
