"""A server's retention schedule (``whirr server --retention``): every ``every`` seconds,
a retention pass over its log (SQLite or PostgreSQL; the segments in ``DATA_DIR/archive``),
in a thread of its own so that requests go on (the pass takes the write lock only for
one short delete per segment)."""

from __future__ import annotations

import asyncio
import logging
from datetime import timedelta
from typing import Any

log = logging.getLogger("whirr.server")
#: Sanic's own logger, which the server prints at INFO: a pass is news, not a warning.
said = logging.getLogger("sanic.root")

#: The first pass comes this long after the start, not at once: a server restarted in a
#: crash loop does not start a checkpoint each time.
FIRST_AFTER = 60.0


async def keep_the_log_small(
    store: Any, older_than: float, every: float, first_after: float = FIRST_AFTER
) -> None:
    """Archive the liveness events older than ``older_than`` seconds, every ``every``
    seconds (the first time after ``first_after``); a failed pass is logged, not fatal."""
    from whirr.store.protocol import StoreError
    from whirr.store.retention_archive import archive

    await asyncio.sleep(min(first_after, every))
    while True:
        try:
            report = await asyncio.to_thread(
                archive, store, older_than=timedelta(seconds=older_than)
            )
        except (StoreError, OSError) as exc:
            log.warning("retention: the pass failed (%s); trying again in %.0f s", exc, every)
        else:
            said.info(
                "retention: archived %d event(s) into %d segment(s) below position %d; "
                "%d event(s) live",
                report.archived,
                len(report.segments),
                report.checkpoint,
                report.live,
            )
        await asyncio.sleep(every)
