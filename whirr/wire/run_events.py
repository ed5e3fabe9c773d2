"""Bodies of the routes a tracked script uses to record its run on a server:
``POST /runs/{id}/attach``, ``/summary`` and ``/artifacts`` (see ``routes/run_events``), and
``POST /runs``, ``/runs/{id}/finish`` for a direct run (``routes/direct_runs``).

Kept apart from ``schemas`` so that module stays about jobs, workers and run reads;
like it, this imports nothing but msgspec (the client and the tracking library load it).
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from msgspec import Meta

from whirr.wire.schemas import Body, Int32, Pid, ShortText, Tag

#: An artifact's path below the run's ``artifacts/`` (checked again against the disk).
ArtifactPath = Annotated[str, Meta(min_length=1, max_length=4096)]
Size = Annotated[int, Meta(ge=0, le=2**63 - 1)]


class RunAttachRequest(Body):
    """``POST /runs/{id}/attach``: a tracked script (``whirr.init()``) attached to its
    job's run. Its config merges over the job's, its tags join the job's, its name only
    fills in a job that has none (as for a local run)."""

    name: ShortText | None = None
    config: dict[str, Any] = {}
    tags: Annotated[list[Tag], Meta(max_length=100)] = []
    hostname: ShortText = ""
    pid: Pid | None = None
    #: ``git.json``'s keys (commit, short_hash, branch, dirty, remote).
    git: dict[str, Any] | None = None


class RunSummaryRequest(Body):
    """``POST /runs/{id}/summary``: values merged over the run's summary."""

    summary: dict[str, Any]


class RunArtifactRequest(Body):
    """``POST /runs/{id}/artifacts``: a file (or directory) now under the run's
    ``artifacts/`` on the data dir the server shares with its workers."""

    path: ArtifactPath
    size: Size


#: A direct run's id, as ``whirr.init()`` makes it (``local-YYYYMMDD-HHMMSS-<6 hex>``).
DirectRunId = Annotated[str, Meta(pattern=r"^local-[0-9A-Za-z_-]{1,100}$")]
#: How a direct run ended (``whirr.events.RunOutcome``; a job's run is ended by its worker).
DirectRunOutcome = Literal["completed", "failed", "cancelled", "timed_out", "killed", "crashed"]


class RunStartRequest(Body):
    """``POST /runs``: a direct run (``python train.py`` with ``WHIRR_SERVER_URL``) starts
    on a machine of its own and is recorded here. With ``resume`` it continues a direct
    run the server already knows (``whirr.init(resume=...)``)."""

    run_id: DirectRunId
    name: ShortText | None = None
    config: dict[str, Any] = {}
    tags: Annotated[list[Tag], Meta(max_length=100)] = []
    hostname: ShortText = ""
    pid: Pid | None = None
    git: dict[str, Any] | None = None
    #: Where the script writes the run's files, on its own host (shown, never read here).
    run_dir: Annotated[str, Meta(max_length=4096)] = ""
    resume: bool = False
    #: ``"shipped"``: the script's background shipper sends the run's files (they land in
    #: the server's run directory; ``run_dir`` is then where the script writes them).
    #: Absent: files stay on the script's machine until the first upload (0.5.3 clients).
    files: Literal["shipped"] | None = None


class RunFinishRequest(Body):
    """``POST /runs/{id}/finish``: how a direct run ended."""

    status: DirectRunOutcome
    error: Annotated[str, Meta(max_length=100_000)] | None = None
    #: The exit status the script asked for (``sys.exit(n)``); older clients send none.
    exit_code: Int32 | None = None
