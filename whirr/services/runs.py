"""Run decisions and queries: record a run's start, summary, artifacts and end; list and
find runs, showing a direct run whose process is gone as ``crashed``.

The ``crashed`` status of a direct run is computed when it is read (same host, pid no
longer alive) and never written by a read: a read command must not change the log, and
another host cannot know whether the process lives.
"""

from __future__ import annotations

import functools
import os
import socket
from collections.abc import Sequence
from datetime import datetime
from typing import Any

import msgspec

from whirr.clock import UTC
from whirr.events import (
    Pending,
    RunArtifactSaved,
    RunFinished,
    RunOutcome,
    RunStarted,
    RunSummaryUpdated,
    run_stream,
)
from whirr.events.runs import FilesMode
from whirr.projections import RunView
from whirr.services.errors import InvalidRequest, NotFound
from whirr.services.run_removal import missing_run, was_deleted
from whirr.store import EventStore, ViewReader

#: How many candidates an ambiguous prefix error lists.
_AMBIGUOUS_SHOWN = 5
_PID_REUSE_SLACK_S = 300.0


class Runs:
    """Run events over one store, and the run views as users should see them."""

    def __init__(self, store: EventStore, hostname: str | None = None) -> None:
        self.store = store
        self.hostname = hostname if hostname is not None else socket.gethostname()

    # -- recording ------------------------------------------------------------
    def start(
        self,
        run_id: str,
        run_dir: str,
        *,
        name: str | None = None,
        job_id: int | None = None,
        config: dict[str, Any] | None = None,
        tags: Sequence[str] = (),
        pid: int | None = None,
        git: dict[str, Any] | None = None,
        files_mode: FilesMode | None = None,
        worker_run_dir: str | None = None,
    ) -> RunView:
        """Record that a run started (or that a tracked script attached to its job's run).
        ``files_mode``/``worker_run_dir``: a direct run that ships its files says so, and
        where it writes them on its own machine."""
        event = RunStarted(
            run_id=run_id,
            run_dir=run_dir,
            name=name,
            job_id=job_id,
            config=dict(config or {}),
            tags=[t for t in tags if t],
            hostname=self.hostname,
            pid=pid,
            git=git,
            files_mode=files_mode,
            worker_run_dir=worker_run_dir,
        )

        def decide(reader: ViewReader) -> list[Pending]:
            # A deleted run's id stays deleted (``whirr.services.run_removal``): asked
            # under the write lock, so a start cannot slip in after the delete.
            if reader.run(run_id) is None and was_deleted(self.store, run_id):
                raise missing_run(self.store, run_id)
            return [Pending(run_stream(run_id), event)]

        self.store.transact(decide)
        view = self.store.run(run_id)
        if view is None:  # deleted by a decision batched just before this one (PostgreSQL)
            raise missing_run(self.store, run_id)
        return self.live(view)

    def update_summary(self, run_id: str, summary: dict[str, Any]) -> None:
        """Merge ``summary`` into the run's summary."""
        self.store.append(
            [Pending(run_stream(run_id), RunSummaryUpdated(run_id=run_id, summary=summary))]
        )

    def artifact_saved(
        self,
        run_id: str,
        path: str,
        size: int,
        *,
        sha256: str | None = None,
        location: str | None = None,
    ) -> None:
        """Record a file copied into the run's artifacts directory (or, with
        ``location``, stored in the server's artifact store)."""
        event = RunArtifactSaved(
            run_id=run_id, path=path, size=size, sha256=sha256, location=location
        )
        self.store.append([Pending(run_stream(run_id), event)])

    def finish(
        self,
        run_id: str,
        status: RunOutcome,
        *,
        exit_code: int | None = None,
        error: str | None = None,
    ) -> None:
        """Record the run's end (the first end recorded wins in the view)."""
        self.store.append(
            [
                Pending(
                    run_stream(run_id),
                    RunFinished(run_id=run_id, status=status, exit_code=exit_code, error=error),
                )
            ]
        )

    # -- reading ----------------------------------------------------------------
    def get(self, run_id: str) -> RunView:
        """One run by exact id, with its live status; ``NotFound`` otherwise."""
        view = self.store.run(run_id)
        if view is None:
            raise NotFound(f"no run {run_id!r}")
        return self.live(view)

    def resolve(self, ref: str) -> RunView:
        """A run by exact id or unique prefix. Unknown: ``NotFound``; a prefix several runs
        share: ``InvalidRequest`` naming some of them."""
        if not ref:
            raise InvalidRequest("give a run id (or a unique prefix of one)")
        exact = self.store.run(ref)
        if exact is not None:
            return self.live(exact)
        matches = self.store.runs_by_prefix(ref, limit=_AMBIGUOUS_SHOWN + 1)
        if not matches:
            raise NotFound(f"no run matches {ref!r} (see `whirr runs`)")
        if len(matches) > 1:
            shown = ", ".join(m.id for m in matches[:_AMBIGUOUS_SHOWN])
            more = ", ..." if len(matches) > _AMBIGUOUS_SHOWN else ""
            raise InvalidRequest(
                f"{ref!r} matches several runs: {shown}{more}; give more of the id"
            )
        return self.live(matches[0])

    def list(
        self,
        status: str | None = None,
        tag: str | None = None,
        limit: int | None = None,
        archived: bool | None = None,
    ) -> list[RunView]:
        """Runs newest first, with live statuses, optionally by status, tag and
        ``archived`` (None: archived or not)."""
        if status in ("running", "crashed"):
            # Which running runs are really crashed is only known here: filter after.
            found = self.store.runs(status="running", tag=tag, archived=archived)
            views = [v for v in map(self.live, found) if v.status == status]
            return views if limit is None else views[:limit]
        found = self.store.runs(status=status, tag=tag, limit=limit, archived=archived)
        return [self.live(v) for v in found]

    def live(self, view: RunView) -> RunView:
        """``view`` with ``crashed`` status when it is a direct run on this host whose
        process is gone (queued jobs' runs are ended truthfully by their worker)."""
        if (
            view.status != "running"
            or view.job_id is not None
            or view.pid is None
            or view.hostname != self.hostname
        ):
            return view
        if process_alive(view.pid, view.started_at):
            return view
        return msgspec.structs.replace(
            view, status="crashed", error="its process is gone without recording an end"
        )


def process_alive(pid: int, started_before: datetime | None = None) -> bool:
    """Whether ``pid`` lives on this host (a zombie does not). With ``started_before``, a
    process that began after that time is a reused pid, not the run's (Linux only)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass  # exists, owned by someone else
    stat = _proc_stat(pid)
    if stat is None:
        return True  # no /proc: existence is all we can know
    state, began = stat
    if state == "Z":
        return False  # exited; its parent has not reaped it yet
    if started_before is None or began is None:
        return True
    # Generous slack: /proc start times count clock ticks from an estimated boot time that
    # drifts from the wall clock (NTP steps, suspend). A reused pid is one that began long
    # after the run started, so minutes of slack lose nothing.
    return began.timestamp() <= started_before.timestamp() + _PID_REUSE_SLACK_S


@functools.cache
def _boot_time() -> int | None:
    """Boot time in epoch seconds (``/proc/stat`` btime), read once per process."""
    try:
        with open("/proc/stat", "rb") as fh:
            return next(int(line.split()[1]) for line in fh if line.startswith(b"btime"))
    except (OSError, StopIteration, ValueError):
        return None


def _proc_stat(pid: int) -> tuple[str, datetime | None] | None:
    """``(state, start time)`` of ``pid`` from ``/proc`` (None where there is no ``/proc``)."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as fh:
            stat = fh.read()
    except OSError:
        return None
    # Fields after the parenthesised command (which may hold spaces): state is first,
    # starttime (field 22 of the whole line) is the 20th.
    fields = stat[stat.rindex(b")") + 2 :].split()
    state = fields[0].decode()
    btime = _boot_time()
    if btime is None:
        return state, None
    began = datetime.fromtimestamp(btime + int(fields[19]) / os.sysconf("SC_CLK_TCK"), UTC)
    return state, began
