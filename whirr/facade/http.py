"""``HttpWhirr``: the ``Whirr`` facade over a whirr server's HTTP API (``WhirrClient``).

The server answers each call with the same ``StoreWhirr`` method a local project would
run, so this class only carries calls across the wire.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from whirr.client import WhirrClient
from whirr.facade.http_studies import HttpStudies
from whirr.facade.mirror import RunFileMirror, cache_root
from whirr.services.errors import InvalidRequest
from whirr.services.run_removal import remove_cached_copies
from whirr.store.runs_page import RunsPage
from whirr.wire import schemas
from whirr.wire.artifact_uploads import DownloadedArtifact, recorded_sha256
from whirr.wire.refs import job_number
from whirr.wire.run_manage import (
    ArchivedFilter,
    CleanResponse,
    RunDeleteResponse,
    archived_filter,
)
from whirr.wire.schemas import RUN_FILE_PAGE
from whirr.wire.shipping import RunFiles


class HttpWhirr:
    """The facade of one whirr server (see ``whirr.facade.protocol.Whirr``)."""

    def __init__(self, client: WhirrClient, cache_dir: Path | None = None) -> None:
        self.client = client
        self.label = f"server {client.url.removesuffix('/api/v1')}"
        #: Copies of the server's run files and their Parquet copies (``facade.mirror``).
        self.cache_dir: Path | None = cache_dir if cache_dir is not None else cache_root(client.url)

    def close(self) -> None:
        self.client.close()

    @property
    def studies(self) -> HttpStudies:
        return HttpStudies(self.client)

    # -- the queue ------------------------------------------------------------------
    def status(self) -> schemas.StatusResponse:
        return self.client.status()

    def submit(self, spec: schemas.SubmitRequest) -> schemas.Job:
        return self.client.get_job(self.client.submit_spec(spec).job_id)

    def job(self, job_id: int) -> schemas.Job:
        return self.client.get_job(job_id)

    def jobs(self, statuses: Sequence[str] | None, limit: int | None) -> list[schemas.Job]:
        wanted = ",".join(statuses) if statuses else "all"
        return self.client.list_jobs(wanted, limit=limit or 10_000)

    def cancel(self, job_id: int) -> schemas.CancelResponse:
        return self.client.cancel(job_id)

    def cancel_all_queued(self) -> schemas.CancelAllResponse:
        return self.client.cancel_all_queued()

    def retry(self, job_id: int) -> schemas.Job:
        return self.client.get_job(self.client.retry(job_id).job_id)

    def set_priority(self, job_id: int, priority: int) -> schemas.Job:
        return self.client.set_priority(job_id, priority)

    def queue(self) -> schemas.QueueOut:
        return self.client.queue()

    def pause(self, reason: str) -> schemas.QueueChangeResponse:
        return self.client.pause_queue(reason)

    def resume(self) -> schemas.QueueChangeResponse:
        return self.client.resume_queue()

    # -- output ---------------------------------------------------------------------
    def read_log(self, job_id: int, offset: int = 0) -> bytes:
        return self.client.logs(job_id, offset)

    def follow_log(self, job_id: int, offset: int = 0) -> Iterator[bytes]:
        return self.client.follow_logs(job_id, offset)

    def log_tail(self, job_id: int, max_bytes: int) -> tuple[int, bytes]:
        return self.client.log_tail(job_id, max_bytes)

    # -- runs -----------------------------------------------------------------------
    def runs(
        self,
        status: str | None = None,
        tag: str | None = None,
        limit: int | None = 100,
        archived: ArchivedFilter = "exclude",
    ) -> list[schemas.Run]:
        return self.client.runs(status=status, tag=tag, limit=limit or 10_000, archived=archived)

    def runs_page(self, page: RunsPage, counts: bool = False) -> schemas.RunsResponse:
        return self.client.runs_page(
            text=page.text,
            status=page.status,
            tag=page.tag,
            sort=page.sort,
            descending=page.descending,
            offset=page.offset,
            limit=page.limit,
            archived=archived_filter(page.archived),
            counts=counts,
        )

    # Management: the ref is resolved here (id, prefix, job) and the write names the exact
    # id, so a write never lands on whichever run a prefix matches on the server.
    def rename_run(self, ref: str, name: str) -> schemas.Run:
        return self.client.rename_run(self.run(ref).id, name)

    def tag_run(self, ref: str, add: Sequence[str] = (), remove: Sequence[str] = ()) -> schemas.Run:
        return self.client.tag_run(self.run(ref).id, add=add, remove=remove)

    def note_run(self, ref: str, text: str, *, append: bool = False) -> schemas.Run:
        return self.client.note_run(self.run(ref).id, text, append=append)

    def archive_run(self, ref: str, archived: bool = True) -> schemas.Run:
        return self.client.archive_run(self.run(ref).id, archived)

    def update_run_config(self, run_id: str, config: dict[str, Any]) -> schemas.Run:
        return self.client.update_run_config(run_id, config)

    def delete_run(self, ref: str) -> RunDeleteResponse:
        deleted = self.client.delete_run(self.run(ref).id)
        remove_cached_copies(self.cache_dir, deleted.run_id)  # this machine's copies of it
        return deleted

    def clean(
        self, older_than_seconds: float | None = None, statuses: Sequence[str] | None = None
    ) -> CleanResponse:
        return self.client.clean(older_than_seconds, statuses)

    def run(self, ref: str) -> schemas.Run:
        number = job_number(ref)
        # ``#12`` goes as its plain number (``#`` cannot travel in a URL path); any other
        # ref as given, so an exact run id (``job-1``) wins as it does in a project.
        return self.client.get_run(str(number) if number is not None and ref[:1] == "#" else ref)

    def metrics(self, run_id: str, since: int = 0, limit: int = 100_000) -> list[dict[str, Any]]:
        return self.client.metrics_page(run_id, since, limit)

    def system(self, run_id: str, since: int = 0, limit: int = 10_000) -> schemas.SystemResponse:
        return self.client.system_samples(run_id, since, limit)

    def tail(self, run_id: str, file: str, rows: int) -> list[dict[str, Any]]:
        return self.client.tail(run_id, file, rows)

    def run_files(self, run_id: str) -> RunFiles:
        return self.client.run_files(run_id)

    def artifacts(self, run_id: str) -> list[schemas.ArtifactOut]:
        return self.client.artifacts(run_id)

    def read_artifact(self, run_id: str, path: str) -> bytes:
        return self.client.read_artifact(run_id, path)

    def download_artifact(self, run_id: str, path: str, target: Path) -> DownloadedArtifact:
        run = self.client.get_run(run_id)
        return self.client.fetch_artifact(run.id, path, target, recorded_sha256(run, path))

    # -- workers and the log ----------------------------------------------------------
    def workers(self, forgotten: bool = False) -> list[schemas.WorkerOut]:
        return self.client.list_workers(forgotten=forgotten)

    def drain(self, worker_id: str) -> schemas.WorkerOut:
        return self.client.drain_worker(worker_id)

    def log_archive(self) -> schemas.LogArchiveResponse:
        return self.client.log_archive()

    def events(
        self,
        after: int = 0,
        *,
        follow: bool = False,
        types: Sequence[str] | None = None,
        stream: str | None = None,
        last: int | None = None,
    ) -> Iterator[schemas.EventOut]:
        return self.client.events(after, follow=follow, types=types, stream=stream, last=last)

    def rebuild(self, full: bool = False) -> int:
        raise InvalidRequest(
            "`whirr rebuild` replays an event log where it is stored: a server's views are "
            f"rebuilt on the server's machine ({self.label}). To rebuild the local project "
            "instead, run it without --server and with WHIRR_SERVER_URL unset."
        )

    # -- run files for analytics ------------------------------------------------------
    def read_run_file(
        self, run_id: str, file: str, offset: int = 0, limit: int = RUN_FILE_PAGE
    ) -> schemas.RunFileChunk:
        return self.client.run_file(run_id, file, offset, limit)

    def local_run_files(self, runs: Sequence[schemas.Run], file: str) -> dict[str, Path]:
        if self.cache_dir is None:
            raise InvalidRequest("no cache directory to copy the server's run files into")
        mirror = RunFileMirror(
            self.cache_dir / "runs",
            lambda run_id, name, offset: self.read_run_file(run_id, name, offset),
        )
        return mirror.sync_all(runs, file)
