"""Opening a worker: the one place that decides where its jobs come from.

``whirr worker`` asks ``open_worker`` for a ``WorkerLoop`` and runs it. With a server URL
the loop claims through ``RemoteLink`` (``WhirrClient``) and writes run files under
``--data-dir``: when that directory is the server's own (it holds the server's
``server-id``) the files are written in place, else they are shipped to the server
(``whirr.worker.shipping``). Without a URL, through ``LocalLink`` over the enclosing
project's store, with the project's settings. The loop itself is the same either way (``loop.py``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import TYPE_CHECKING

from whirr.projections.queue import Capacity
from whirr.services.errors import InvalidRequest
from whirr.services.server_id import read_server_id
from whirr.wire.shipping import WorkerFilesMode
from whirr.worker.loop import LOCAL_CLOCK_SKEW, LoopSettings, WorkerLoop
from whirr.worker.output_cap import DEFAULT_MAX_OUTPUT_BYTES
from whirr.worker.run_size import DEFAULT_WARN_BYTES

if TYPE_CHECKING:
    from whirr.client import WhirrClient
    from whirr.worker.remote import RemoteLink
    from whirr.worker.shipping import JobShipping


@contextmanager
def open_worker(
    server: str | None,
    capacity: Capacity,
    *,
    data_dir: str | None = None,
    worker_id: str | None = None,
    exit_when_empty: bool = False,
    lease_seconds: float = 60.0,
    heartbeat_interval: float | None = None,
    kill_grace_period: float = 10.0,
    warn_run_dir_bytes: int | None = DEFAULT_WARN_BYTES,
    max_output_bytes: int | None = DEFAULT_MAX_OUTPUT_BYTES,
    say: Callable[[str], None] = lambda message: None,
) -> Iterator[WorkerLoop]:
    """The worker loop for ``server`` (a URL) or, when None, the enclosing project.
    ``lease_seconds``, ``heartbeat_interval`` and ``kill_grace_period`` are a remote
    worker's; a project's worker takes them from the project's config.
    ``warn_run_dir_bytes``: a running job's directory past this size is logged and
    recorded once (``whirr.worker.run_size``; None: not watched). ``max_output_bytes``:
    each job's cap on its output.log (``whirr.worker.output_cap``; None: no cap)."""
    if server:
        with _remote(
            server,
            capacity,
            data_dir=data_dir,
            worker_id=worker_id,
            exit_when_empty=exit_when_empty,
            lease_seconds=lease_seconds,
            heartbeat_interval=heartbeat_interval,
            kill_grace_period=kill_grace_period,
            warn_run_dir_bytes=warn_run_dir_bytes,
            max_output_bytes=max_output_bytes,
            say=say,
        ) as loop:
            yield loop
    else:
        with _local(
            capacity,
            worker_id=worker_id,
            exit_when_empty=exit_when_empty,
            warn_run_dir_bytes=warn_run_dir_bytes,
            max_output_bytes=max_output_bytes,
            say=say,
        ) as loop:
            yield loop


@contextmanager
def _local(
    capacity: Capacity,
    *,
    worker_id: str | None,
    exit_when_empty: bool,
    warn_run_dir_bytes: int | None,
    max_output_bytes: int | None,
    say: Callable[[str], None],
) -> Iterator[WorkerLoop]:
    from whirr.project import find_project
    from whirr.worker.local import LocalLink

    project = find_project()
    config = project.config
    store = project.open_store()
    try:
        link = LocalLink(
            store,
            lease_seconds=config.heartbeat_timeout,
            reserve_after=config.reserve_after,
            worker_id=worker_id,
            say=say,
        )
        settings = LoopSettings(
            lease_seconds=config.heartbeat_timeout,
            heartbeat_interval=config.heartbeat_interval,
            kill_grace_period=config.kill_grace_period,
            recheck=min(1.0, config.poll_interval),
            clock_skew=LOCAL_CLOCK_SKEW,
            warn_run_dir_bytes=warn_run_dir_bytes,
            max_output_bytes=max_output_bytes,
        )
        yield WorkerLoop(
            link,
            project.runs_dir,
            capacity,
            settings,
            exit_when_empty=exit_when_empty,
            notify=config.notify,
            say=say,
        )
    finally:
        store.close()


@contextmanager
def _remote(
    server: str,
    capacity: Capacity,
    *,
    data_dir: str | None,
    worker_id: str | None,
    exit_when_empty: bool,
    lease_seconds: float,
    heartbeat_interval: float | None,
    kill_grace_period: float,
    warn_run_dir_bytes: int | None,
    max_output_bytes: int | None,
    say: Callable[[str], None],
) -> Iterator[WorkerLoop]:
    from whirr.client import ServerError, WhirrClient
    from whirr.worker.remote import CLAIM_WAIT, RemoteLink

    if not data_dir:
        raise InvalidRequest(
            "a remote worker needs --data-dir (or WHIRR_DATA_DIR): where its jobs' run "
            "files go (the server's own data dir when it is shared, else a local one)"
        )
    interval = heartbeat_interval if heartbeat_interval is not None else lease_seconds / 3
    if not interval < lease_seconds:
        raise InvalidRequest("--heartbeat-interval must be shorter than --lease-seconds")
    settings = LoopSettings(
        lease_seconds=lease_seconds,
        heartbeat_interval=interval,
        kill_grace_period=kill_grace_period,
        warn_run_dir_bytes=warn_run_dir_bytes,
        max_output_bytes=max_output_bytes,
    )
    data = Path(data_dir).expanduser().resolve()
    with WhirrClient(server) as client:
        # Fail fast, with a clear message, on a wrong URL; a server that is there but
        # failing (5xx) is waited for: the loop registers once it answers.
        server_id = None
        with suppress(ServerError):
            server_id = client.health().server_id
        files = files_mode(data, server_id)
        link = RemoteLink(
            client,
            lease_seconds=lease_seconds,
            claim_wait=0.0 if exit_when_empty else CLAIM_WAIT,
            worker_id=worker_id,
            files=files,
            say=say,
        )
        shipping = None
        if files == "shipped":
            shipping = _shipping(client, data, link, say)
            say(f"Run files: shipped to the server from {data / 'runs'}.")
        yield WorkerLoop(
            link,
            data / "runs",
            capacity,
            settings,
            exit_when_empty=exit_when_empty,
            say=say,
            shipping=shipping,
        )


def files_mode(data_dir: Path, server_id: str | None) -> WorkerFilesMode:
    """``shared`` when ``data_dir`` is the server's (it holds the server's id), or when
    the server is too old to take shipped files (it has no id: it assumes a shared
    filesystem); else ``shipped``."""
    if not server_id:
        return "shared"
    return "shared" if read_server_id(data_dir) == server_id else "shipped"


def _shipping(
    client: WhirrClient, data_dir: Path, link: RemoteLink, say: Callable[[str], None]
) -> JobShipping:
    from whirr.client import WhirrClient
    from whirr.shipping.shipper import Shipper
    from whirr.worker.shipping import JobShipping

    def open_client() -> WhirrClient:
        # Its own connection: an upload never waits behind the loop's heartbeats.
        return WhirrClient(client.url, token=client.token or "", timeout=client.timeout)

    shipper = Shipper(open_client, ledger_dir=data_dir / "shipping", say=say)
    return JobShipping(shipper, link.last_metrics_line)
