"""The claim candidates one group-committed batch shares.

Every claim reads the head of the queue (``claimable_jobs``: up to 64 ready jobs in claim
order), and inside a batch each such read is a round trip the whole batch waits for while
it holds the append lock. Measured on the API server with 16 HTTP workers, those reads
were half of a batch's time. Yet the claims of one batch look at the same queue: nothing
but the batch itself changes it while the batch holds the lock. So the first claim of a
batch reads the window once, with some rows to spare, and the batch's later claims take
theirs from what is left.

Why a later claim sees what its own query would return
------------------------------------------------------
The window is the claimable jobs in claim order as the query saw them. A later decision
of the batch can change that set only by writing job views (decisions write nothing
else that the query reads), and the batch sees every view it writes (``wrote``):

* a written job that is no longer queued (claimed, cancelled) leaves the window;
* a written job that is queued may have entered it, or moved in it (a submit, a requeue,
  a retry, a dependency ending, a new priority): the window is dropped, and the next
  claim queries again.

What is left is a prefix of the queue's claim order, as long as it was read complete: a
query for ``limit + SPARE`` rows that returned fewer read every claimable job; otherwise
the window serves a claim only while ``limit`` rows are left (the rows beyond the window
are exactly the ones that follow them in claim order). Otherwise the claim queries.

One difference, deliberate: the window holds the jobs claimable at the ``now`` of the
claim that read it; a later claim of the batch (a few milliseconds later) does not see a
retry whose backoff ran out in between. That claim behaves as if it had run at that
earlier instant, which a claim in a batch may do anyway (the batch's order is arbitrary);
the job is claimable for the next batch.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

#: Rows read beyond a claim's ``limit``: what the batch's later claims take from.
SPARE = 16


class ClaimWindow:
    """Claim candidates read once per batch: ``(job id, view JSON)`` rows in claim order."""

    def __init__(self) -> None:
        self._rows: list[tuple[int, str]] | None = None
        self._complete = False
        self._now: datetime | None = None

    def take(self, limit: int, now: datetime | None) -> list[tuple[int, str]] | None:
        """The first ``limit`` candidates left, or None when the window cannot tell
        (none read yet, dropped, too few rows left, or ``now`` earlier than the read's)."""
        rows = self._rows
        if rows is None:
            return None
        if (now is None) != (self._now is None) or (
            now is not None and self._now is not None and now < self._now
        ):
            return None
        if len(rows) < limit and not self._complete:
            return None
        return rows[:limit]

    def fetch_limit(self, limit: int) -> int:
        """How many rows to ask the database for when ``take`` said None."""
        return limit + SPARE

    def read(self, rows: list[tuple[int, str]], fetched_for: int, now: datetime | None) -> None:
        """The database's answer to a query for ``fetched_for`` rows at ``now``."""
        self._rows = list(rows)
        self._complete = len(rows) < fetched_for
        self._now = now

    def wrote(self, jobs: dict[int, Any]) -> None:
        """A decision wrote these job views (id -> view): keep the window exact."""
        if self._rows is None or not jobs:
            return
        if any(view.status == "queued" for view in jobs.values()):
            self._rows = None  # a job may have entered the window or moved in it
            return
        self._rows = [row for row in self._rows if row[0] not in jobs]
