"""The retention policy: which events of the log may leave the live table for an archive
segment (docs/architecture.md, "Retention").

Only *liveness* events may go, and only once nothing can still depend on them live:

* ``worker.seen`` (a worker saying it is alive while idle) older than the policy's age;
* ``job.heartbeat`` (a worker renewing its lease) older than the policy's age *and* of an
  attempt that has ended (the job's view no longer runs that attempt).

Every other event (submits, claims, starts, ends, requeues, summaries, run management,
worker registration and stops, ...) is a *domain* event and stays live for ever. The
policy never decides alone: an event also goes only where a checkpoint covers it (its
position is below the checkpoint's), so a rebuild from that checkpoint never needs it,
and a full replay reads it back from its segment (``retention_history``).
"""

from __future__ import annotations

from datetime import datetime, timedelta

import msgspec

from whirr.projections import JobView
from whirr.projections.jobs import Running

#: The only event types retention may move out of the live log.
LIVENESS = ("job.heartbeat", "worker.seen")
#: Liveness events younger than this stay live (``whirr log archive --older-than``).
DEFAULT_OLDER_THAN = timedelta(days=7)


class _Attempt(msgspec.Struct):
    """The two fields of a ``job.heartbeat`` the policy reads (the rest is not decoded)."""

    job_id: int
    attempt: int


_attempt_of = msgspec.json.Decoder(_Attempt).decode


def cutoff(now: datetime, older_than: timedelta) -> datetime:
    """Events recorded before this are old enough to go."""
    return now - older_than


def attempt_ended(view: JobView | None, attempt: int) -> bool:
    """Whether the attempt ``attempt`` of the job whose view is ``view`` is over: only a
    running job's current attempt is not (a job no longer in the views is over too)."""
    if view is None:
        return True
    return not (isinstance(view.state, Running) and view.attempt == attempt)


def heartbeat_attempt(data: bytes | str) -> tuple[int, int] | None:
    """``(job_id, attempt)`` of an encoded ``job.heartbeat``; None when it does not decode
    (such an event is kept: it is the business of ``whirr repair``, not of retention)."""
    try:
        found = _attempt_of(data)
    except msgspec.DecodeError:
        return None
    return found.job_id, found.attempt
