"""Events in a run's life: started, summary, artifact saved, size warning, finished."""

from datetime import datetime
from typing import Any, Literal

from whirr.events.base import Event
from whirr.events.bounds import ByteSize, ExitCode, JobId, Pid

#: How a run can end. ``killed`` is a run stopped by a signal it could not finish after.
RunOutcome = Literal["completed", "failed", "cancelled", "timed_out", "killed", "crashed"]
#: Where a run's files are written (``RunStarted.files_mode``).
FilesMode = Literal["shared", "shipped", "local"]


class RunStarted(Event, frozen=True, tag="run.started"):
    """A run began: a worker started a job, or a script called ``whirr.init()`` directly."""

    run_id: str
    run_dir: str
    name: str | None = None
    job_id: JobId | None = None
    config: dict[str, Any] = {}
    tags: list[str] = []
    hostname: str = ""
    pid: Pid | None = None
    git: dict[str, Any] | None = None
    #: Where the run's files are written: ``shared`` (in place, on a filesystem the worker
    #: shares with the server), ``shipped`` (on the worker's machine, sent to the server)
    #: or ``local``; None: as before issue 16 (a job's files in ``run_dir``).
    files_mode: FilesMode | None = None
    #: The run directory on the worker's own machine, when it ships its files.
    worker_run_dir: str | None = None
    #: When the run really began, for a run recorded after the fact (``whirr import``);
    #: None: when this event was recorded.
    started_at: datetime | None = None
    #: The run this one was imported from (``mlflow:<run uuid>``, ``tensorboard:<key>``,
    #: ``wandb:<run id>``); None: a run whirr saw begin.
    source: str | None = None


class RunSummaryUpdated(Event, frozen=True, tag="run.summary_updated"):
    """Summary values were set; keys merge over earlier ones."""

    run_id: str
    summary: dict[str, Any]


class RunArtifactSaved(Event, frozen=True, tag="run.artifact_saved"):
    """A file was copied into the run's ``artifacts/`` directory (or uploaded to the
    server's artifact store)."""

    run_id: str
    path: str
    size: ByteSize
    #: Hex SHA-256 of the content, when known (uploads are checked against it).
    sha256: str | None = None
    #: Where the content lives when not under the run's ``artifacts/``: an
    #: ``s3://bucket/key`` URL of the server's artifact store. None: the run directory.
    location: str | None = None


class RunFinished(Event, frozen=True, tag="run.finished"):
    """A run ended with ``status``."""

    run_id: str
    status: RunOutcome
    exit_code: ExitCode | None = None
    error: str | None = None
    #: When the run really ended, for a run recorded after the fact (``whirr import``);
    #: None: when this event was recorded.
    finished_at: datetime | None = None


class RunSizeWarning(Event, frozen=True, tag="run.size_warning"):
    """The run's directory grew past the size its worker warns at (``whirr worker
    --warn-run-dir-size``): recorded once per crossing, by the worker that measured it;
    again only after it fell below and passed it once more. A warning, nothing stopped."""

    run_id: str
    #: What the worker measured (bytes; a lower bound when the directory held more
    #: entries than one measurement reads).
    size: ByteSize
    #: The size it warns at.
    limit: ByteSize
