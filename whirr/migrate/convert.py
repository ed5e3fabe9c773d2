"""Converting an original whirr 0.5.3 project in place, backup first.

1. The original database is read (read-only) and planned; a job that a 0.5.3 worker still
   runs (heartbeat within ``heartbeat_timeout``) stops everything before any write.
2. A consistent copy of it is kept beside it (``whirr-0.5.3-<time>.db``, VACUUM INTO).
3. The new log is built in ``whirr.db.migrating`` (appended at the recorded times), and
   checkpointed into one file.
4. The original is checkpointed out of WAL mode (which needs it unused: a 0.5.3 process
   holding it makes this fail, nothing replaced), and the new log takes its name.
5. A project's ``.whirr/`` becomes the owner's only (0700); opening it gives it its
   ``project-id``.
Run folders stay where they are: their files (metrics.jsonl, output.log, artifacts/) are
read as this whirr writes them. Running it again finds this whirr's log: nothing to do.
"""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import apsw
import msgspec

from whirr.events import PROJECT_STREAM, Pending, ProjectCreated
from whirr.identity import Project as Place
from whirr.identity import highest_job_dir, open_checked
from whirr.migrate.detect import is_original
from whirr.migrate.original import NotOriginal, Original, read_original
from whirr.migrate.timeline import Timed, timeline
from whirr.project import Project
from whirr.store.protocol import StoreError

_SIDE_FILES = ("-wal", "-shm", "-journal")


class MigrateError(StoreError):
    """The project cannot be migrated now (said in one line)."""


class Migration(msgspec.Struct, frozen=True, kw_only=True):
    """What ``whirr migrate`` did, or would do (``dry_run``)."""

    database: str
    dry_run: bool
    nothing_to_do: bool = False
    backup: str | None = None
    jobs: int = 0
    runs: int = 0
    events: int = 0
    job_statuses: dict[str, int] = {}
    run_statuses: dict[str, int] = {}
    next_job_id: int = 1


def state_of(db: Path) -> str:
    """``missing``, ``original`` (0.5.3's tables), ``log`` (this whirr's) or ``other``."""
    if not db.exists():
        return "missing"
    try:
        conn = apsw.Connection(str(db), flags=apsw.SQLITE_OPEN_READONLY)
        try:
            if is_original(conn):
                return "original"
            tables = conn.execute("PRAGMA user_version").fetchall()[0][0]
        finally:
            conn.close()
    except apsw.Error as exc:
        raise StoreError(f"cannot read {db}: {exc}") from None
    return "log" if tables else "other"


def check_running(original: Original, timeout_s: float, now: datetime) -> None:
    """Refuse while a 0.5.3 worker still runs a job (its heartbeat is recent)."""
    for job in original.jobs:
        if job.status != "running":
            continue
        seen = job.heartbeat_at or job.started_at
        if seen is not None and now - seen < timedelta(seconds=timeout_s):
            raise MigrateError(
                f"job #{job.id} is running under a whirr 0.5.3 worker (last heartbeat "
                f"{int((now - seen).total_seconds())}s ago): let it end or stop that worker, "
                "then run `whirr migrate` again"
            )


def migrate(
    project: Place,
    *,
    heartbeat_timeout: float,
    dry_run: bool = False,
    say: Callable[[str], None] = print,
) -> Migration:
    """Convert the 0.5.3 database of ``project`` (a project, or a ``whirr server`` data dir
    as 0.5.3's server left it: ``whirr.db`` and ``runs/``) into this whirr's log (see the
    module doc). A job whose heartbeat is newer than ``heartbeat_timeout`` seconds is
    taken for one a 0.5.3 worker still runs."""
    db = project.db_path
    state = state_of(db)
    if state == "missing":
        raise MigrateError(f"no database at {db}: nothing to migrate")
    if state == "log":
        return Migration(database=str(db), dry_run=dry_run, nothing_to_do=True)
    if state == "other":
        raise NotOriginal(f"{db} is neither this whirr's log nor a whirr 0.5.3 database")
    now = datetime.now(UTC)
    original = read_original(db, now)
    check_running(original, heartbeat_timeout, now)
    events, run_count = timeline(original, project.runs_dir, now)
    floor = max([0, highest_job_dir(project.runs_dir), *(job.id for job in original.jobs)])
    plan = Migration(
        database=str(db),
        dry_run=dry_run,
        jobs=len(original.jobs),
        runs=run_count,
        events=len(events) + 1,
        job_statuses=dict(Counter(job.status for job in original.jobs)),
        run_statuses=_run_statuses(events),
        next_job_id=floor + 1,
    )
    if dry_run:
        return plan
    backup = project.dir / f"whirr-0.5.3-{now:%Y%m%d-%H%M%S}.db"
    _backup(db, backup)
    say(f"Backed up the whirr 0.5.3 database to {backup}")
    building = db.with_name(db.name + ".migrating")
    try:
        _build(building, events, floor, first=events[0].at if events else now)
        _leave_wal(db)
        os.replace(building, db)
    finally:
        _remove(building)
    if isinstance(project, Project):
        # 0.5.3 left .whirr/ 0755; this whirr keeps it the owner's only (the log holds
        # every job's command, config and environment). A data dir is the operator's.
        os.chmod(project.dir, 0o700)
    open_checked(project).close()  # gives the project its project-id
    return msgspec.structs.replace(plan, backup=str(backup))


def _run_statuses(events: list[Timed]) -> dict[str, int]:
    from whirr.events import RunFinished

    ends = [t.pending.event.status for t in events if isinstance(t.pending.event, RunFinished)]
    return dict(Counter(ends))


def _backup(db: Path, dest: Path) -> None:
    if dest.exists():
        raise MigrateError(f"{dest} exists already: try again in a second")
    source = apsw.Connection(str(db), flags=apsw.SQLITE_OPEN_READONLY)
    try:
        source.set_busy_timeout(30_000)
        # VACUUM INTO reads in one transaction: the copy holds what the WAL held too.
        source.execute("VACUUM INTO ?", (str(dest),))
    except apsw.Error as exc:
        raise MigrateError(f"could not back up {db} to {dest}: {exc}") from None
    finally:
        source.close()
    os.chmod(dest, 0o600)


def _build(path: Path, events: list[Timed], floor: int, first: datetime) -> None:
    """The new log in ``path``: ``project.created`` then ``events``, appended with the
    store's clock at each event's time (one append per instant)."""
    from whirr.store.sqlite import SQLiteStore

    _remove(path)
    _remove_side_files(path)
    at = [first]
    store = SQLiteStore(str(path), clock=lambda: at[0])
    try:
        created = ProjectCreated(project_id=os.urandom(16).hex(), job_id_floor=floor)
        store.append([Pending(PROJECT_STREAM, created)], expect=0)
        batch: list[Pending] = []
        for item in events:
            if batch and item.at != at[0]:
                store.append(batch)
                batch = []
            at[0] = item.at
            batch.append(item.pending)
        if batch:
            store.append(batch)
    finally:
        store.close()
    _leave_wal(path)


def _leave_wal(db: Path) -> None:
    """Checkpoint ``db``'s WAL into it and leave WAL mode, so the file alone holds it all
    (SQLite takes WAL mode back on the next open). Needs nobody else to have it open."""
    try:
        conn = apsw.Connection(str(db))
        try:
            conn.set_busy_timeout(5_000)
            conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchall()
            mode = conn.execute("PRAGMA journal_mode=DELETE").fetchall()[0][0]
        finally:
            conn.close()
    except apsw.Error as exc:
        raise MigrateError(
            f"cannot take {db} out of use: {exc} (is a whirr 0.5.3 worker or script still "
            "using it? stop it and run `whirr migrate` again)"
        ) from None
    if str(mode).lower() != "delete":
        raise MigrateError(
            f"{db} is still in use (a whirr 0.5.3 worker or script?): stop it and run "
            "`whirr migrate` again"
        )
    _remove_side_files(db)


def _remove_side_files(db: Path) -> None:
    for suffix in _SIDE_FILES:
        _remove(db.with_name(db.name + suffix))


def _remove(path: Path) -> None:
    path.unlink(missing_ok=True)
