"""``StoreWhirr``: the ``Whirr`` facade over an event store and its run files.

Used by every command in a local project, and by ``whirr server`` itself (its routes call
the same methods on their thread pools), so a question has one answer whether it is asked
of a project or of a server.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import msgspec

from whirr.clock import utc_now
from whirr.events import tag_of
from whirr.filemodes import ChecksumMismatch, save_stream
from whirr.projections import JobView, WorkerView
from whirr.runfiles import RunFile, UnsafePath, read_from
from whirr.services import run_files
from whirr.services.errors import InvalidRequest, InvalidState, NotFound
from whirr.services.jobs import Jobs
from whirr.services.management import Management
from whirr.services.queue import Queue
from whirr.services.render import job_out, run_out, worker_out
from whirr.services.run_removal import remove_cached_copies, remove_run_dir
from whirr.services.waiting import live_workers, waiting_note
from whirr.services.workers import FORGET_WORKERS_AFTER, Workers, remembered_since
from whirr.store import EventStore
from whirr.store.runs_page import RunsPage
from whirr.wire import schemas
from whirr.wire.artifact_uploads import DownloadedArtifact, recorded_sha256
from whirr.wire.refs import job_number
from whirr.wire.run_manage import (
    ArchivedFilter,
    CleanResponse,
    RunDeleteResponse,
    archived_flag,
)
from whirr.wire.schemas import RUN_FILE_PAGE
from whirr.wire.shipping import RunFiles

if TYPE_CHECKING:
    from whirr.facade.local_studies import StoreStudies
    from whirr.services.runs import Runs

#: How long one wait for new events or output lasts before looking again.
_WAIT = 1.0
_LOG_CHUNK = 1 << 20
#: Bytes copied at a time by ``download_artifact``.
_COPY_CHUNK = 1 << 20
#: The run files ``tail`` reads.
TAIL_FILES = {"metrics": "metrics.jsonl", "system": "system.jsonl"}


class StoreSettings(msgspec.Struct, frozen=True, kw_only=True):
    """What a store-backed installation decides for itself."""

    #: Where run directories live (a project's ``.whirr/runs``, a server's ``runs``).
    runs_dir: Path
    #: A worker not heard from for this long is offline (seconds).
    worker_timeout: float = 120.0
    #: A worker not heard from for this long is left out of the workers listings and
    #: the status counts unless all are asked for (seconds; ``FORGET_WORKERS_AFTER``).
    forget_workers_after: float = FORGET_WORKERS_AFTER.total_seconds()
    #: Check at submit time that the command can start here (a project: yes; a server:
    #: no, the command runs on a worker's machine).
    check_commands: bool = True
    #: Attempts a job may use when workers are lost, unless it says otherwise.
    max_attempts: int = 3
    #: Seconds before a failed job's retry, unless it says otherwise.
    retry_delay: float = 10.0
    #: Where ``--snapshot`` keeps code snapshots (None: not offered here).
    snapshots_dir: Path | None = None
    #: Snapshot every submit unless told otherwise (a project's ``snapshot: true``).
    snapshot_by_default: bool = False
    #: The host name direct runs are checked against for ``crashed``.
    hostname: str = ""
    #: Where derived copies (Parquet copies of metrics) are kept (None: none are).
    cache_dir: Path | None = None
    #: Run files are this user's own (a project): ``local_run_files`` hands out their
    #: paths, falling back to the directory a run recorded when it is not under
    #: ``runs_dir``. A server's are read only through ``whirr.runfiles``' checks.
    own_run_files: bool = False
    #: Requeue the jobs of lost workers (lease run out) before each write: a project has
    #: no reaper of its own besides its workers. A server's reaper does it (and knows
    #: its own pauses, ``services.lease_grace``), so a server leaves this off.
    requeue_before_writes: bool = False


class StoreWhirr:
    """The facade over one event store (see ``whirr.facade.protocol.Whirr``)."""

    def __init__(
        self, store: EventStore, settings: StoreSettings, label: str, *, owns_store: bool = True
    ) -> None:
        self.store = store
        self.settings = settings
        self.label = label
        self._owns_store = owns_store
        self._jobs = Jobs(store)
        self._studies: StoreStudies | None = None
        self.cache_dir = settings.cache_dir

    def close(self) -> None:
        if self._owns_store:
            self.store.close()

    @property
    def studies(self) -> StoreStudies:
        if self._studies is None:
            from whirr.facade.local_studies import StoreStudies

            s = self.settings
            self._studies = StoreStudies(
                self.store,
                s.runs_dir,
                max_attempts=s.max_attempts,
                check_commands=s.check_commands,
            )
        return self._studies

    # -- the queue ------------------------------------------------------------------
    def status(self) -> schemas.StatusResponse:
        counts = self.store.job_counts()  # the counts view: O(1) in the number of jobs
        now = utc_now()
        workers = self.store.workers(heard_since=self._remembered_since(now))
        online = sum(1 for w in workers if w.is_online(now, self.settings.worker_timeout))
        return schemas.StatusResponse(
            queued=counts.get("queued", 0),
            running=counts.get("running", 0),
            completed=counts.get("completed", 0),
            failed=counts.get("failed", 0),
            cancelled=counts.get("cancelled", 0),
            timed_out=counts.get("timed_out", 0),
            workers_online=online,
            workers_total=len(workers),
            head=self.store.head(),
            store=store_kind(self.store),
        )

    def _requeue_lost(self) -> None:
        """Before a write: requeue (or end) the jobs whose worker is lost, so what is
        written and shown next sees them as they are."""
        if self.settings.requeue_before_writes:
            self._jobs.requeue_expired()

    def submit(self, spec: schemas.SubmitRequest) -> schemas.Job:
        self._requeue_lost()
        s = self.settings
        workdir, digest = spec.workdir, None
        wants_snapshot = spec.snapshot if spec.snapshot is not None else s.snapshot_by_default
        if wants_snapshot:
            if s.snapshots_dir is None:
                raise InvalidRequest(
                    "snapshots are taken from a local project's files; a server cannot "
                    "take one (submit from the project, or without --snapshot)"
                )
            from whirr.snapshot import take_snapshot

            workdir, digest = take_snapshot(workdir, s.snapshots_dir)
        job = self._jobs.submit(
            spec.command_argv,
            workdir,
            name=spec.name,
            config=spec.config,
            tags=[t.strip() for t in spec.tags or []],
            max_attempts=spec.max_attempts or s.max_attempts,
            priority=spec.priority,
            env=spec.env,
            check=s.check_commands,
            gpus=spec.gpus,
            after=spec.after,
            after_any=spec.after_any,
            retries=spec.retries,
            retry_delay=spec.retry_delay if spec.retry_delay is not None else s.retry_delay,
            timeout_seconds=spec.timeout_seconds,
            snapshot=digest,
            memory_bytes=spec.memory_bytes,
            cpus=spec.cpus,
        )
        return self._with_waiting([job])[0]

    def job(self, job_id: int) -> schemas.Job:
        return self._with_waiting([self._jobs.get(job_id)])[0]

    def jobs(self, statuses: Sequence[str] | None, limit: int | None) -> list[schemas.Job]:
        wanted = list(statuses) if statuses else None
        if wanted is not None and "active" in wanted:
            wanted = [s for s in wanted if s != "active"] + ["queued", "running"]
        return self._with_waiting(self.store.jobs(wanted, limit=limit))

    def _with_waiting(self, views: Sequence[JobView]) -> list[schemas.Job]:
        """Wire jobs, each queued one saying why it waits (one look at the workers)."""
        now = utc_now()
        live: list[WorkerView] | None = None

        def workers() -> list[WorkerView]:
            nonlocal live
            if live is None:
                timeout = self.settings.worker_timeout
                heard = self.store.workers(heard_since=now - timedelta(seconds=timeout))
                live = live_workers(heard, timeout, now)
            return live

        out = []
        for view in views:
            job = job_out(view)
            if view.status == "queued":
                job = msgspec.structs.replace(job, waiting=waiting_note(view, now, workers))
            out.append(job)
        return out

    def cancel(self, job_id: int) -> schemas.CancelResponse:
        before = self.store.job(job_id)
        self._requeue_lost()
        previous, job = self._jobs.cancel(job_id)
        if before is not None and before.status == "running":
            previous = "running"  # its worker was lost: requeued above, cancelled now
        if job.status == "cancelled":
            message = f"Cancelled job #{job.id}"
        else:
            message = (
                f"Cancel requested for job #{job.id}; its worker stops it at its next heartbeat"
            )
        return schemas.CancelResponse(message=message, previous_status=previous, status=job.status)

    def cancel_all_queued(self) -> schemas.CancelAllResponse:
        self._requeue_lost()
        ids = self._jobs.cancel_all_queued()
        return schemas.CancelAllResponse(
            message=f"Cancelled {len(ids)} queued job(s)", cancelled=ids, count=len(ids)
        )

    def retry(self, job_id: int) -> schemas.Job:
        self._requeue_lost()
        return self._with_waiting([self._jobs.retry(job_id)])[0]

    def set_priority(self, job_id: int, priority: int) -> schemas.Job:
        self._requeue_lost()
        return self._with_waiting([Queue(self.store).set_priority(job_id, priority)])[0]

    def queue(self) -> schemas.QueueOut:
        state = Queue(self.store).state()
        counts = self.store.job_counts()
        return schemas.QueueOut(
            paused=state.paused,
            since=state.since,
            reason=state.reason,
            queued=counts.get("queued", 0),
            running=counts.get("running", 0),
        )

    def pause(self, reason: str) -> schemas.QueueChangeResponse:
        changed = Queue(self.store).pause(reason)
        return schemas.QueueChangeResponse(changed=changed, queue=self.queue())

    def resume(self) -> schemas.QueueChangeResponse:
        changed = Queue(self.store).resume()
        return schemas.QueueChangeResponse(changed=changed, queue=self.queue())

    # -- output ---------------------------------------------------------------------
    def _log_file(self, job_id: int) -> RunFile:
        return RunFile.of(self.settings.runs_dir, self._jobs.get(job_id).run_id, "output.log")

    def read_log(self, job_id: int, offset: int = 0) -> bytes:
        log = self._log_file(job_id)
        parts = []
        while chunk := read_from(log, offset, _LOG_CHUNK):
            parts.append(chunk)
            offset += len(chunk)
        return b"".join(parts)

    def log_tail(self, job_id: int, max_bytes: int) -> tuple[int, bytes]:
        log = self._log_file(job_id)
        try:
            start = max(0, log.stat().st_size - max(0, max_bytes))
        except (FileNotFoundError, UnsafePath):
            return 0, b""
        return start, read_from(log, start, max(0, max_bytes))

    def follow_log(self, job_id: int, offset: int = 0) -> Iterator[bytes]:
        log = self._log_file(job_id)
        while True:
            # The status first: output written before the job ended is read after it.
            job = self.store.job(job_id)
            ended = job is None or job.status not in ("queued", "running")
            while chunk := read_from(log, offset, _LOG_CHUNK):
                offset += len(chunk)
                yield chunk
            if ended:
                return
            self.store.wait(self.store.head(), _WAIT)  # a status change, or a second

    # -- runs -----------------------------------------------------------------------
    def _runs(self) -> Runs:
        from whirr.services.runs import Runs  # socket and friends: only when runs are asked

        return Runs(self.store, hostname=self.settings.hostname or None)

    def runs(
        self,
        status: str | None = None,
        tag: str | None = None,
        limit: int | None = 100,
        archived: ArchivedFilter = "exclude",
    ) -> list[schemas.Run]:
        found = self._runs().list(
            status=status, tag=tag, limit=limit, archived=archived_flag(archived)
        )
        return [run_out(r) for r in found]

    def runs_page(self, page: RunsPage, counts: bool = False) -> schemas.RunsResponse:
        found = self.store.runs_page(page)
        live = self._runs().live
        statuses = self.store.run_status_counts(page.archived) if counts else None
        return schemas.RunsResponse(
            runs=[run_out(live(view)) for view in found.runs],
            matched=found.matched,
            statuses=statuses,
        )

    # -- run and job management ---------------------------------------------------------
    def rename_run(self, ref: str, name: str) -> schemas.Run:
        return run_out(Management(self.store).rename(self.run(ref).id, name))

    def tag_run(self, ref: str, add: Sequence[str] = (), remove: Sequence[str] = ()) -> schemas.Run:
        if not add and not remove:
            raise InvalidRequest("give tags to add or to remove")
        run_id = self.run(ref).id
        manage = Management(self.store)
        view = manage.add_tags(run_id, add) if add else None
        if remove:
            view = manage.remove_tags(run_id, remove)
        assert view is not None
        return run_out(view)

    def note_run(self, ref: str, text: str, *, append: bool = False) -> schemas.Run:
        return run_out(Management(self.store).note(self.run(ref).id, text, append=append))

    def archive_run(self, ref: str, archived: bool = True) -> schemas.Run:
        return run_out(Management(self.store).set_archived(self.run(ref).id, archived))

    def update_run_config(self, run_id: str, config: dict[str, Any]) -> schemas.Run:
        return run_out(Management(self.store).update_config(run_id, config))

    def delete_run(self, ref: str) -> RunDeleteResponse:
        run = self.run(ref)
        # A direct run whose process lives still writes its files; a crashed one may go.
        Management(self.store).delete(run.id, live=self._runs().live)
        removed = remove_run_dir(self.settings.runs_dir, run.id)
        remove_cached_copies(self.cache_dir, run.id)
        where = f"; its files under {self.settings.runs_dir / run.id} removed" if removed else ""
        return RunDeleteResponse(
            run_id=run.id, message=f"Deleted run {run.id}{where}", files_removed=removed
        )

    def clean(
        self, older_than_seconds: float | None = None, statuses: Sequence[str] | None = None
    ) -> CleanResponse:
        older = timedelta(seconds=older_than_seconds) if older_than_seconds is not None else None
        ids = Management(self.store).clean(older_than=older, statuses=statuses, now=utc_now())
        return CleanResponse(
            message=f"Cleaned {len(ids)} ended job(s) from the queue's views (their runs stay)",
            cleaned=ids,
            count=len(ids),
        )

    def run(self, ref: str) -> schemas.Run:
        number = job_number(ref)
        if number is not None and self.store.run(ref) is None:
            job = self._jobs.get(number)
            if self.store.run(job.run_id) is None:
                raise NotFound(f"job #{number} has no run yet ({job.status})")
            ref = job.run_id
        return run_out(self._runs().resolve(ref))

    def _known_run(self, run_id: str) -> str:
        if self.store.run(run_id) is None:
            raise NotFound(f"no run {run_id!r}")
        return run_id

    def metrics(self, run_id: str, since: int = 0, limit: int = 100_000) -> list[dict[str, Any]]:
        return run_files.read_metric_rows(
            self.settings.runs_dir, self._known_run(run_id), since, limit
        )

    def system(self, run_id: str, since: int = 0, limit: int = 10_000) -> schemas.SystemResponse:
        rows, after = run_files.read_system_rows(
            self.settings.runs_dir, self._known_run(run_id), since, limit
        )
        return schemas.SystemResponse(samples=rows, count=len(rows), next=after)

    def tail(self, run_id: str, file: str, rows: int) -> list[dict[str, Any]]:
        name = TAIL_FILES.get(file)
        if name is None:
            raise InvalidRequest(f"no run file {file!r} (use metrics or system)")
        return run_files.tail_rows(self.settings.runs_dir, self._known_run(run_id), name, rows)

    def run_files(self, run_id: str) -> RunFiles:
        from whirr.services.shipping import Shipping

        runs_dir = self.settings.runs_dir
        # A server's shipping index lives beside its runs directory (``<data-dir>/
        # shipping``); a project has none, and its runs' files are its own.
        described = Shipping(self.store, runs_dir.parent, runs_dir).files(self._known_run(run_id))
        if not self.settings.own_run_files or described.mode == "shipped":
            return described
        return msgspec.structs.replace(
            described,
            mode="local",
            files={
                name: msgspec.structs.replace(entry, state="local")
                for name, entry in described.files.items()
            },
        )

    def artifacts(self, run_id: str) -> list[schemas.ArtifactOut]:
        return run_files.list_artifacts(self.settings.runs_dir, self._known_run(run_id))

    def read_artifact(self, run_id: str, path: str) -> bytes:
        with run_files.open_artifact(self.settings.runs_dir, self._known_run(run_id), path) as fh:
            return fh.read()

    def download_artifact(self, run_id: str, path: str, target: Path) -> DownloadedArtifact:
        run = self.run(run_id)
        sha256 = recorded_sha256(run, path)
        try:
            fh = run_files.open_artifact(self.settings.runs_dir, run.id, path)
        except NotFound:
            stored = [a for a in run.artifacts if a.path == path and a.stored_in == "s3"]
            if stored:
                raise NotFound(
                    f"artifact {path!r} of run {run.id} is in the server's S3 artifact store: "
                    "get it through the server (--server URL)"
                ) from None
            raise
        with fh:
            chunks = iter(lambda: fh.read(_COPY_CHUNK), b"")
            try:
                size, digest = save_stream(target, chunks, sha256)
            except ChecksumMismatch as exc:
                raise InvalidState(f"artifact {path!r} of run {run.id}: {exc}") from None
        return DownloadedArtifact(
            dest=str(target), size=size, sha256=digest, verified=sha256 is not None
        )

    # -- workers and the log ----------------------------------------------------------
    def workers(self, forgotten: bool = False) -> list[schemas.WorkerOut]:
        now = utc_now()
        found = self.store.workers(heard_since=None if forgotten else self._remembered_since(now))
        return [worker_out(w, now, self.settings.worker_timeout) for w in found]

    def log_archive(self) -> schemas.LogArchiveResponse:
        from whirr.store import retention_segments as files

        anchor = files.anchor_of(self.store)
        if anchor is None:
            return schemas.LogArchiveResponse(directory=None, segments=[])
        found = [
            schemas.ArchivedSegment(first=s.first, last=s.last, path=str(s.path), pending=s.pending)
            for s in files.segments(anchor)
        ]
        return schemas.LogArchiveResponse(directory=str(files.directory(anchor)), segments=found)

    def _remembered_since(self, now: datetime) -> datetime:
        return remembered_since(now, self.settings.forget_workers_after)

    def drain(self, worker_id: str) -> schemas.WorkerOut:
        view = Workers(self.store).drain(worker_id)
        return worker_out(view, utc_now(), self.settings.worker_timeout)

    def events(
        self,
        after: int = 0,
        *,
        follow: bool = False,
        types: Sequence[str] | None = None,
        stream: str | None = None,
        last: int | None = None,
    ) -> Iterator[schemas.EventOut]:
        position = after if last is None else self.start_of_last(last, types, stream)
        filtered = types is not None or stream is not None
        while True:
            head = self.store.head()
            batch = self.store.read(after=position, limit=500, stream=stream, types=types)
            for rec in batch:
                yield schemas.EventOut(
                    position=rec.position,
                    recorded_at=rec.recorded_at,
                    stream=rec.stream,
                    type=tag_of(rec.event),
                    event=msgspec.to_builtins(rec.event),
                )
            if batch:
                position = batch[-1].position
                if len(batch) == 500:
                    continue
            if filtered:
                position = max(position, head)
            if not follow:
                return
            self.store.wait(position, _WAIT)

    def start_of_last(
        self, count: int, types: Sequence[str] | None = None, stream: str | None = None
    ) -> int:
        """The position after which the last ``count`` events (of ``types``, of
        ``stream``) begin: read back from the head in growing windows, so the last fifty
        of a million events cost a read of about fifty, and a rare type at most about
        one pass over the log."""
        head = self.store.head()
        if count <= 0:
            return head
        window = max(count, 64)
        while True:
            after = max(0, head - window)
            found = self.store.read(after=after, stream=stream, types=types)
            if len(found) >= count:
                return found[-count].position - 1
            if after == 0:
                return 0
            window *= 4

    def rebuild(self, full: bool = False) -> int:
        return self.store.rebuild(full=full)

    # -- run files for analytics ------------------------------------------------------
    def read_run_file(
        self, run_id: str, file: str, offset: int = 0, limit: int = RUN_FILE_PAGE
    ) -> schemas.RunFileChunk:
        name = TAIL_FILES.get(file)
        if name is None:
            raise InvalidRequest(f"no run file {file!r} (use metrics or system)")
        handle = run_files.run_file(self.settings.runs_dir, self._known_run(run_id), name)
        try:
            with handle.open() as fh:
                size = os.fstat(fh.fileno()).st_size
                fh.seek(offset)
                data = fh.read(limit)
        except (FileNotFoundError, UnsafePath):
            return schemas.RunFileChunk(data=b"", offset=offset, size=0)
        cut = data.rfind(b"\n") + 1
        if cut or len(data) < limit:
            data = data[:cut]  # a line still being written waits for the next read
        return schemas.RunFileChunk(data=data, offset=offset, size=size)

    def local_run_files(self, runs: Sequence[schemas.Run], file: str) -> dict[str, Path]:
        name = TAIL_FILES.get(file)
        if name is None:
            raise InvalidRequest(f"no run file {file!r} (use metrics or system)")
        if not self.settings.own_run_files:
            raise InvalidRequest("run files of a server are read through its API")
        found: dict[str, Path] = {}
        for run in runs:
            # The project's runs/<id>/ first; the directory the run recorded is the
            # fallback (a run tracked outside the project tree).
            for directory in (self.settings.runs_dir / run.id, run.run_dir or None):
                if directory is None:
                    continue
                path = Path(directory) / name
                try:
                    size = os.stat(path).st_size
                except OSError:
                    continue
                if size:
                    found[run.id] = path
                break
        return found


def store_kind(store: EventStore) -> str:
    """``sqlite``, ``postgres`` or ``memory``: which store answers (for ``doctor``)."""
    return type(store).__name__.removesuffix("Store").lower()
