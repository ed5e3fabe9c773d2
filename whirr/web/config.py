"""Settings of one API server (``whirr server`` builds them from its options)."""

from __future__ import annotations

from pathlib import Path

import msgspec

from whirr.services.workers import FORGET_WORKERS_AFTER

#: Largest request body accepted (bytes); bigger ones get 413 before any handler runs.
REQUEST_MAX_SIZE = 1024 * 1024


class ServerConfig(msgspec.Struct, frozen=True, kw_only=True):
    """What ``create_app`` needs. ``token=None`` turns auth off (loopback only: the CLI
    refuses ``--no-auth`` on other interfaces)."""

    data_dir: str
    database_url: str | None = None
    token: str | None = None
    #: The URL browsers and clients use to reach this server (``https://whirr.example.com``,
    #: normalised by ``whirr.web.origin.normalize_public_url``). When set, only requests
    #: whose Host is its host (or a loopback name) are served, token or not.
    public_url: str | None = None
    #: How often the server requeues jobs whose lease ran out (seconds).
    requeue_interval: float = 2.0
    #: A worker not heard from for this long counts as offline (seconds).
    worker_timeout: float = 120.0
    #: A worker not heard from for this long is left out of ``GET /workers`` and the
    #: status counts unless all are asked for (seconds; ``--forget-workers-after``).
    forget_workers_after: float = FORGET_WORKERS_AFTER.total_seconds()
    #: Attempts a submitted job may use when its workers are lost.
    max_attempts: int = 3
    request_max_size: int = REQUEST_MAX_SIZE
    #: Threads running store writes. SQLite serialises writers anyway, so one thread
    #: avoids lock waits inside the process. The PostgreSQL store group-commits the
    #: decisions waiting at once (one flush per batch), so more threads mean bigger
    #: batches: 16 (measured: 4 gave about two thirds of the claim throughput).
    writer_threads: int | None = None
    reader_threads: int = 8
    #: Serve the web dashboard at ``/`` beside the API (needs the ``dashboard`` extra).
    dashboard: bool = True
    #: Where uploaded artifacts go: None for the run directories, ``s3://bucket/prefix``.
    artifact_store: str | None = None
    #: A project's dashboard (``whirr dashboard``): the run files are the project's own
    #: (``local``), not a server's (``shared`` or ``shipped``).
    project: bool = False
    #: The S3-compatible server of an ``s3://`` store (None: AWS, or AWS_ENDPOINT_URL).
    s3_endpoint_url: str | None = None
    #: The largest artifact an upload may make (bytes); bigger ones get 413.
    max_artifact_size: int = 20 << 30
    #: Archive liveness events older than this many seconds on a schedule (``--retention``;
    #: SQLite logs only); None: never.
    retention: float | None = None
    #: Seconds between two retention passes.
    retention_every: float = 3600.0

    @property
    def data_path(self) -> Path:
        """The data directory."""
        return Path(self.data_dir)

    @property
    def runs_dir(self) -> Path:
        """Where run files live (shared with remote workers' ``--data-dir``)."""
        return Path(self.data_dir) / "runs"

    @property
    def store_url(self) -> str:
        """The event store: ``database_url``, else SQLite under the data dir."""
        if self.database_url:
            return self.database_url
        return f"sqlite://{(Path(self.data_dir) / 'whirr.db').resolve()}"

    @property
    def writers(self) -> int:
        """Number of writer threads for this store."""
        if self.writer_threads is not None:
            return max(1, self.writer_threads)
        return 1 if self.store_url.startswith("sqlite") else 16
