"""Leases a server extends for its own pauses: a start, a restart, a stall.

A lease says "the worker renewed by then". When the server itself could not take
renewals (it was down, SIGSTOPped, swapped out, its machine suspended), the time it lost
must not count against its workers: otherwise its first lease sweep after the pause
requeues every running job whose heartbeats were waiting in its sockets.

``LeaseGrace`` keeps, in memory, an extension per running attempt: after a stall of S
seconds each lease then running is moved on by S, so a worker gets back exactly the time
it had left when the server stopped answering. After a start the same holds for the time
the server was down, counted from the last event it recorded (while jobs run, their
heartbeats are recorded every few seconds). A renewal that moves a lease past its
extension makes the extension moot; a requeue of an extended lease says so in its reason.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timedelta

from whirr.projections import JobView


class LeaseGrace:
    """Extensions of running leases, by (job id, attempt), with why each was granted."""

    def __init__(self) -> None:
        #: (job id, attempt) -> (extended expiry, why, renewed since). A renewal past the
        #: extension makes it moot; its reason is kept for that one renewal (sent by a
        #: worker during the pause, its job may be stopped already), dropped at the next.
        self._until: dict[tuple[int, int], tuple[datetime, str, bool]] = {}

    def __len__(self) -> int:
        return len(self._until)

    def started(self, running: Iterable[JobView], now: datetime, last_event: datetime) -> None:
        """The server (re)started at ``now``; the last event it had recorded is from
        ``last_event``: the time between is credited to each running lease."""
        down = (now - last_event).total_seconds()
        if down > 0:
            self.stalled(running, down, f"the server was down for {down:.1f} s")

    def stalled(self, running: Iterable[JobView], seconds: float, why: str = "") -> None:
        """The server could not answer for ``seconds``: each running lease moves on by that."""
        by = timedelta(seconds=seconds)
        why = why or f"the server stalled for {seconds:.1f} s"
        for job in running:
            expires = self._expiry(job)
            if expires is not None:
                self._until[(job.id, job.attempt)] = (expires + by, why, False)

    def expired(self, job: JobView, now: datetime) -> bool:
        """True when ``job``'s lease ran out before ``now``, extensions included."""
        expires = job.lease_expires_at
        if expires is None:
            return False
        extended = self._until.get((job.id, job.attempt))
        if extended is None or extended[2]:
            return expires < now
        return max(expires, extended[0]) < now

    def reason(self, job: JobView) -> str | None:
        """Why ``job``'s lease was extended (None: it was not)."""
        extended = self._until.get((job.id, job.attempt))
        return None if extended is None else extended[1]

    def update(self, running: Iterable[JobView]) -> None:
        """Follow the renewals (call it every round): an extension a renewal went past is
        moot, its reason kept for that renewal only (one its worker sent during the pause
        and gave up on: the job may be stopped already); the next renewal, or the attempt's
        end, forgets it."""
        alive: set[tuple[int, int]] = set()
        for job in running:
            key = (job.id, job.attempt)
            alive.add(key)
            extended = self._until.get(key)
            expires = job.lease_expires_at
            if extended is None or expires is None:
                continue
            until, why, renewed = extended
            if renewed and expires > until:
                del self._until[key]
            elif not renewed and expires >= until:
                self._until[key] = (expires, why, True)
        for key in [key for key in self._until if key not in alive]:
            del self._until[key]

    def _expiry(self, job: JobView) -> datetime | None:
        """The lease as extended so far (None: not running)."""
        expires = job.lease_expires_at
        if expires is None:
            return None
        extended = self._until.get((job.id, job.attempt))
        return expires if extended is None else max(expires, extended[0])
