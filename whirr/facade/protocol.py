"""``Whirr``: everything a command, a page or a script asks of one whirr installation.

Two implementations, one per place the data can live: ``StoreWhirr`` reads and writes a
project's (or the server's own) event store and run files; ``HttpWhirr`` asks a whirr
server through ``WhirrClient``. Every answer is a wire type (``whirr.wire.schemas``), so an
edge that prints it prints the same thing whichever it got: one JSON shape per entity.

Errors are ``whirr.services.errors`` in both: ``NotFound``, ``InvalidRequest``,
``InvalidState`` (a conflict), and ``ServerUnreachable``/``AuthError`` from HTTP only.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any, Protocol

from whirr.facade.studies import Studies
from whirr.store.runs_page import RunsPage
from whirr.wire import schemas
from whirr.wire.artifact_uploads import DownloadedArtifact
from whirr.wire.run_manage import ArchivedFilter, CleanResponse, RunDeleteResponse
from whirr.wire.schemas import RUN_FILE_PAGE
from whirr.wire.shipping import RunFiles


class Whirr(Protocol):
    """One whirr installation, local or remote."""

    #: Where the data lives, for people: ``project /home/me/exp`` or ``server http://...``.
    label: str

    def close(self) -> None:
        """Release the store or the connection."""

    @property
    def studies(self) -> Studies:
        """Its sweeps and ablation studies (``whirr.facade.studies``)."""
        ...

    # -- the queue ------------------------------------------------------------------
    def status(self) -> schemas.StatusResponse:
        """Job counts per status, worker counts and the log's head."""

    def submit(self, spec: schemas.SubmitRequest) -> schemas.Job:
        """Queue a job (every scheduling option lives in ``spec``)."""

    def job(self, job_id: int) -> schemas.Job:
        """One job, with ``waiting`` saying why it is still queued (NotFound)."""

    def jobs(self, statuses: Sequence[str] | None, limit: int | None) -> list[schemas.Job]:
        """Jobs newest first, optionally of some statuses; each with ``waiting``."""

    def cancel(self, job_id: int) -> schemas.CancelResponse:
        """Cancel a job: a queued one at once, a running one through its worker."""

    def cancel_all_queued(self) -> schemas.CancelAllResponse:
        """Cancel every queued job."""

    def retry(self, job_id: int) -> schemas.Job:
        """A new job with the command of an ended one."""

    def set_priority(self, job_id: int, priority: int) -> schemas.Job:
        """Change a queued job's priority."""

    def queue(self) -> schemas.QueueOut:
        """Whether workers may claim new jobs."""

    def pause(self, reason: str) -> schemas.QueueChangeResponse:
        """Stop workers from claiming new jobs."""

    def resume(self) -> schemas.QueueChangeResponse:
        """Let workers claim again."""

    # -- output ---------------------------------------------------------------------
    def read_log(self, job_id: int, offset: int = 0) -> bytes:
        """The job's output from byte ``offset`` to its current end."""

    def follow_log(self, job_id: int, offset: int = 0) -> Iterator[bytes]:
        """The job's output from ``offset`` as it is written, until the job ends."""

    def log_tail(self, job_id: int, max_bytes: int) -> tuple[int, bytes]:
        """The last ``max_bytes`` (at most) of the job's output, and the byte offset they
        start at: ``read_log(job_id, start + len(data))`` reads on from there."""

    # -- runs -----------------------------------------------------------------------
    def runs(
        self,
        status: str | None = None,
        tag: str | None = None,
        limit: int | None = 100,
        archived: ArchivedFilter = "exclude",
    ) -> list[schemas.Run]:
        """Runs newest first (live ``crashed`` status), optionally by status and tag;
        archived runs left out (``exclude``), alone (``only``) or with the rest
        (``include``)."""

    def runs_page(self, page: RunsPage, counts: bool = False) -> schemas.RunsResponse:
        """One page of runs filtered, sorted and counted by the store (``matched``: how
        many match in all; with ``counts``, ``statuses``: runs per status). Filters go
        by the recorded status; a page's runs carry their live one."""

    def run(self, ref: str) -> schemas.Run:
        """A run by exact id, unique prefix, or its job (``1``, ``#1``, ``job-1``)."""

    # -- run and job management (events: whirr.events.manage) ----------------------------
    def rename_run(self, ref: str, name: str) -> schemas.Run:
        """Give a run (id, unique prefix or its job) a new name."""

    def tag_run(self, ref: str, add: Sequence[str] = (), remove: Sequence[str] = ()) -> schemas.Run:
        """Add and remove a run's tags."""

    def note_run(self, ref: str, text: str, *, append: bool = False) -> schemas.Run:
        """Set a run's note (or append a paragraph to it)."""

    def archive_run(self, ref: str, archived: bool = True) -> schemas.Run:
        """Hide a run from default listings (or show it again)."""

    def update_run_config(self, run_id: str, config: dict[str, Any]) -> schemas.Run:
        """Merge config values set after the run started (exact run id)."""

    def delete_run(self, ref: str) -> RunDeleteResponse:
        """Delete a run: its files removed, the run gone from every view. Refused
        (``InvalidState``) while the run runs or its job may still write to it."""

    def clean(
        self, older_than_seconds: float | None = None, statuses: Sequence[str] | None = None
    ) -> CleanResponse:
        """Drop ended jobs from the queue's views (listings, status counts); their runs
        stay."""

    def metrics(self, run_id: str, since: int = 0, limit: int = 100_000) -> list[dict[str, Any]]:
        """One page of the run's metric rows: ``_idx >= since``, at most ``limit``."""

    def system(self, run_id: str, since: int = 0, limit: int = 10_000) -> schemas.SystemResponse:
        """One page of the run's system samples from whole line ``since``."""

    def tail(self, run_id: str, file: str, rows: int) -> list[dict[str, Any]]:
        """The last ``rows`` whole rows of the run's ``metrics`` or ``system`` file."""

    def run_files(self, run_id: str) -> RunFiles:
        """Where the run's files are (``local``, ``shared`` or ``shipped``) and, for
        shipped ones, how far each got to this place (``GET /runs/{id}/files``)."""

    def artifacts(self, run_id: str) -> list[schemas.ArtifactOut]:
        """The files under the run's ``artifacts/``."""

    def read_artifact(self, run_id: str, path: str) -> bytes:
        """One artifact's bytes."""

    def download_artifact(self, run_id: str, path: str, target: Path) -> DownloadedArtifact:
        """Save one artifact as the file ``target`` (streamed, replaced atomically),
        checked against the sha256 the run recorded when it has one."""

    # -- workers and the log ----------------------------------------------------------
    def workers(self, forgotten: bool = False) -> list[schemas.WorkerOut]:
        """The workers heard from within ``forget_workers_after`` (``forgotten``: every
        worker ever registered), ``online`` as this installation's timeout says."""

    def drain(self, worker_id: str) -> schemas.WorkerOut:
        """Ask a worker to finish its jobs, claim nothing new, and exit."""

    def log_archive(self) -> schemas.LogArchiveResponse:
        """Where retention moved old liveness events of the log (the segment files, on
        the machine that keeps the log)."""

    def events(
        self,
        after: int = 0,
        *,
        follow: bool = False,
        types: Sequence[str] | None = None,
        stream: str | None = None,
        last: int | None = None,
    ) -> Iterator[schemas.EventOut]:
        """Events after position ``after``, optionally only of ``types`` and of one
        ``stream``; with ``last``, the last that many such events instead (``after`` is
        then ignored); with ``follow`` new ones as they happen."""

    def rebuild(self, full: bool = False) -> int:
        """Replay the log into fresh views, from the newest valid checkpoint (``full``:
        from position 0); the number of events replayed. Only where the store is (a
        project): a server's is rebuilt on its own machine."""

    # -- run files for analytics ------------------------------------------------------
    #: Where this process keeps derived copies for this installation (Parquet copies of
    #: metrics, a server's run files): a project's ``.whirr/cache``; for a server, a
    #: directory of the user's cache (``~/.cache/whirr/<host>``). None: keep none.
    cache_dir: Path | None

    def read_run_file(
        self, run_id: str, file: str, offset: int = 0, limit: int = RUN_FILE_PAGE
    ) -> schemas.RunFileChunk:
        """Whole lines of the run's ``metrics`` or ``system`` JSONL from byte ``offset``,
        at most ``limit`` bytes (more when one line is longer)."""

    def local_run_files(self, runs: Sequence[schemas.Run], file: str) -> dict[str, Path]:
        """A file on this machine holding each run's ``metrics`` or ``system`` JSONL as it
        is now, by run id (runs without a non-empty one are left out): a project's own
        files; for a server, copies under ``cache_dir`` brought up to date (only the bytes
        added since the last call are fetched: run files only grow)."""
