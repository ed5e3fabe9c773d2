"""Bodies of the run-file shipping routes (``/runs/{id}/files``): how a worker without the
server's filesystem sends a run's files to it (issue 16; docs/http-api.md "Run files").

A worker (or a direct run's background shipper) uploads what a job appended to its
``output.log``, ``metrics.jsonl`` and ``system.jsonl`` by attempt-local byte offset, and
replaces the small whole files (``meta.json``, ...) when they change. Pure like
``schemas``: nothing but msgspec.
"""

from __future__ import annotations

from typing import Annotated, Literal

from msgspec import Meta

from whirr.wire.schemas import Body

#: Files shipped by byte offset: a job only appends to them.
APPEND_STREAMS = ("output.log", "metrics.jsonl", "system.jsonl")
#: Small files replaced whole when they change.
WHOLE_FILES = ("meta.json", "config.json", "git.json", "diff.patch", "requirements.txt")
#: Every file the shipping routes take, by name.
SHIPPED_FILES = APPEND_STREAMS + WHOLE_FILES
#: The largest body one upload may carry (clients send at most 4 MiB).
MAX_UPLOAD = 8 << 20
#: The largest whole file (a bigger ``diff.patch`` is not shipped).
MAX_WHOLE_FILE = 16 << 20

#: Where a run's files are: written in place on a filesystem the worker shares with the
#: server (``shared``), sent by the worker (``shipped``), or on the machine of a project's
#: own worker or direct run (``local``).
FilesMode = Literal["shared", "shipped", "local"]
#: What a worker says in its ``started`` report (``whirr.wire.schemas.StartedRequest``).
WorkerFilesMode = Literal["shared", "shipped"]
#: The state of one run file on the server:
#: ``complete``: the worker's final size was reported and all of it received;
#: ``live``: the attempt runs (or ended without final sizes yet) and bytes arrive;
#: ``pending``: shipped mode, nothing received yet;
#: ``missing_tail``: the final size is larger than what arrived, or the attempt ended
#: and its worker never reported final sizes;
#: ``shared``/``local``: written in place, not shipped.
FileState = Literal["complete", "live", "pending", "missing_tail", "shared", "local"]
#: Attempt numbers of uploads: a job's attempt, or 0 for a direct run.
UploadAttempt = Annotated[int, Meta(ge=0, le=2**31 - 1)]
FileSize = Annotated[int, Meta(ge=0, le=2**62)]


class RunFileState(Body):
    """One file in ``GET /runs/{id}/files``."""

    #: Bytes of the server's copy (every attempt's together).
    size: int
    #: Bytes of the current attempt on the server (the offset a shipper resumes from).
    attempt_size: int
    #: The current attempt's final size as its worker reported it (None: not yet).
    final_size: int | None
    state: FileState


class RunFiles(Body):
    """``GET /runs/{id}/files``: the run's files on the server, by name."""

    run_id: str
    #: The job's current attempt (0 for a direct run).
    attempt: int
    mode: FilesMode
    files: dict[str, RunFileState]
    #: The worker's host and its run directory there, when it ships (shown by ``whirr show``).
    hostname: str = ""
    worker_run_dir: str | None = None


class UploadAnswer(Body):
    """``PUT /runs/{id}/files/{name}``: the attempt-local size after the upload."""

    size: int


class FinalFilesRequest(Body):
    """``POST /runs/{id}/files/final``: the attempt's final local sizes, sent once the
    job ended and after its last upload (or when the shipper gives up)."""

    files: Annotated[dict[str, FileSize], Meta(max_length=64)]
