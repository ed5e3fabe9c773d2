"""Where a run lives and where its lifecycle is recorded.

- Inside a job a worker runs (``WHIRR_RUN_DIR``, ``WHIRR_RUN_ID``, ``WHIRR_JOB_ID``): the
  job's run, recorded in the project database that holds its run directory. Elsewhere,
  under a remote worker (``WHIRR_SERVER_URL``, with the ``WHIRR_TOKEN`` the worker hands
  over): recorded through the server's HTTP API. Away from both: files only.
- A direct run (``python train.py``) with a server (``whirr.init(server=...)``, else
  ``WHIRR_SERVER_URL``: the precedence of every command): a new ``local-...`` run recorded
  on that server (its start, summary and end, through ``POST /runs``), its files written
  under the enclosing project's runs directory (none is created) or ``~/.whirr/runs/``.
- Otherwise a direct run is a new ``local-YYYYMMDD-HHMMSS-<6 hex>`` run in the
  project found from the cwd. With no project there, one is created in the cwd, exactly as
  ``whirr init`` would (and said so on stderr), so the run shows in ``whirr runs`` at once.
  The home directory is never made a project: runs started there are kept as files
  under ``~/.whirr/runs/`` only.
"""

from __future__ import annotations

import os
import secrets
import sys
from datetime import datetime
from pathlib import Path
from typing import Any

import msgspec

from whirr.clock import UTC
from whirr.project import Project, ProjectNotFound, find_project, init_project


class Location(msgspec.Struct, kw_only=True):
    """A run's identity, directory and (optional) event store."""

    run_id: str
    run_dir: Path
    job_id: int | None = None
    attached: bool = False  # a worker owns this run's start and end
    store: Any = None  # an EventStore, or None: files only (or the server's)
    #: The server recording this run (a remote worker's job, or a direct run when a
    #: server was named), and its bearer token.
    server_url: str | None = None
    token: str | None = None
    #: A direct run continued with ``resume=``.
    resumed: bool = False
    #: How a remote worker's job's files reach the server (``WHIRR_FILES``): written in
    #: place (``shared``) or shipped by the worker (``shipped``); None elsewhere.
    files: str | None = None


def new_run_id(now: datetime | None = None) -> str:
    """``local-YYYYMMDD-HHMMSS-<6 hex>`` (UTC, so ids sort by start across machines)."""
    at = now or datetime.now(UTC)
    return f"local-{at:%Y%m%d-%H%M%S}-{secrets.token_hex(3)}"


def locate(
    env: dict[str, str] | None = None,
    resume: str | None = None,
    cwd: Path | None = None,
    server: str | None = None,
) -> Location:
    """Decide where the run that ``init()`` starts lives (see the module docstring)."""
    env = dict(os.environ) if env is None else env
    env_dir, env_id = env.get("WHIRR_RUN_DIR"), env.get("WHIRR_RUN_ID")
    if env_dir and env_id:
        job = env.get("WHIRR_JOB_ID")
        run_dir = Path(env_dir)
        # The worker decided where its job records (``server=`` does not change that): a
        # run directory in a local project is a local worker's job, even when the user's
        # shell exported WHIRR_SERVER_URL (for `whirr submit -s`) to that worker.
        store = _store_holding(run_dir)
        job_server = None if store is not None else env.get("WHIRR_SERVER_URL") or None
        return Location(
            run_id=env_id,
            run_dir=run_dir,
            attached=True,
            store=store,
            job_id=int(job) if job and job.isdigit() else None,
            server_url=job_server,
            token=env.get("WHIRR_TOKEN") or None,
            files=env.get("WHIRR_FILES") or None,
        )
    # One precedence, as ``whirr.facade.open_whirr``: the server named, else the
    # environment's, else the project around the cwd.
    url = server or env.get("WHIRR_SERVER_URL") or None
    if url:
        return _on_server(url, env.get("WHIRR_TOKEN") or None, resume, cwd)
    project = _project(cwd)
    if resume is not None:
        runs_dir = project.runs_dir if project else _home_runs()
        store = project.open_store() if project else None
        try:
            if store is not None:
                _refuse_deleted(store, resume)
            run_dir = _resumed_dir(runs_dir, resume)
        except BaseException:
            if store is not None:
                store.close()
            raise
        return Location(run_id=resume, run_dir=run_dir, store=store, resumed=True)
    run_id = new_run_id()
    if project is None:
        return Location(run_id=run_id, run_dir=_home_runs() / run_id)
    return Location(run_id=run_id, run_dir=project.run_dir(run_id), store=project.open_store())


def _on_server(url: str, token: str | None, resume: str | None, cwd: Path | None) -> Location:
    """A direct run recorded on the server ``url``; its files go to the enclosing
    project's runs directory, or ``~/.whirr/runs`` (no project is created for it)."""
    try:
        runs_dir = find_project((cwd or Path.cwd()).resolve()).runs_dir
    except ProjectNotFound:
        runs_dir = _home_runs()
    if resume is not None:
        run_dir = _resumed_dir(runs_dir, resume)
        return Location(run_id=resume, run_dir=run_dir, server_url=url, token=token, resumed=True)
    run_id = new_run_id()
    return Location(run_id=run_id, run_dir=runs_dir / run_id, server_url=url, token=token)


def _refuse_deleted(store: Any, resume: str) -> None:
    """A deleted run's id stays deleted (``whirr runs delete``): resuming it is refused
    before anything is written (a server refuses it too, 410)."""
    from whirr.services.run_removal import was_deleted

    if store.run(resume) is None and was_deleted(store, resume):
        raise ValueError(
            f"cannot resume {resume!r}: it was deleted (whirr runs delete), and its id is "
            "not used again; start a new run"
        )


def _resumed_dir(runs_dir: Path, resume: str) -> Path:
    if not resume.startswith("local-") or "/" in resume or resume != Path(resume).name:
        raise ValueError(f"resume= takes the id of a direct run (local-...), not {resume!r}")
    run_dir = runs_dir / resume
    if not run_dir.is_dir():
        raise ValueError(f"cannot resume {resume!r}: no run directory {run_dir}")
    return run_dir


def _project(cwd: Path | None) -> Project | None:
    here = (cwd or Path.cwd()).resolve()
    try:
        return find_project(here)
    except ProjectNotFound:
        pass
    if here == Path.home().resolve():
        return None
    project, _ = init_project(here)
    print(
        f"whirr: no project found; created one in {project.dir} "
        "(`whirr runs` there lists this run)",
        file=sys.stderr,
    )
    return project


def _home_runs() -> Path:
    return Path.home() / ".whirr" / "runs"


def _store_holding(run_dir: Path) -> Any:
    """The store of the project whose ``runs/`` holds ``run_dir``, if its database exists."""
    try:
        project = find_project(run_dir.parent)
    except ProjectNotFound:
        return None
    try:
        same = run_dir.resolve().parent == project.runs_dir.resolve()
    except OSError:
        return None
    if not same or not project.db_path.exists():
        return None
    return project.open_store()
