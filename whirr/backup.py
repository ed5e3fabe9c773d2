"""Backups of a SQLite project (or a server's SQLite data dir), and putting one back.

A backup is a directory: ``whirr.db`` (a consistent copy of the log and its views, the
WAL's contents included, made by SQLite's ``VACUUM INTO`` inside one read transaction, so
writers carry on meanwhile), ``project-id``, ``config.yaml`` when there is one, the run
directories (``runs/``, unless left out) and ``backup.json``, a manifest saying what it
holds.
The archive segments (``archive/``, the liveness events retention moved out of the live
log) come too, copied under the archive's lock with the log, so the backup's full replay
(``rebuild --full``) is the original's. Checkpoints (``checkpoints/``) do not: they are
derived, and the restored project's first rebuild makes one again.

Restoring checks the copy (SQLite's integrity check, and that its first event is the
project named by its ``project-id``) before anything is replaced; the database that was
there is moved aside, never deleted; run directories are added, never overwritten (a
run newer than the backup keeps its files). Then a ``project.restored`` event is appended:
the restore is part of the history, the identity check (``whirr.identity``) sees the
backup's project, and new job ids start above every ``runs/job-N``, so no job writes
into a run directory made after the backup.
"""

from __future__ import annotations

import contextlib
import os
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import apsw
import msgspec

from whirr.events import PROJECT_STREAM, Pending, ProjectCreated, ProjectRestored
from whirr.filemodes import private_dir, write_private
from whirr.identity import ID_FILE, Project, highest_job_dir, read_project_id
from whirr.store import retention_segments as segments
from whirr.store.protocol import StoreError

MANIFEST = "backup.json"
#: The files of a project's database that a restore moves aside.
_DB_FILES = ("whirr.db", "whirr.db-wal", "whirr.db-shm", ID_FILE, segments.DIRECTORY)


class BackupError(StoreError):
    """A backup or restore that cannot be done; the message says why."""


class Manifest(msgspec.Struct, frozen=True, kw_only=True):
    """What a backup holds (``backup.json``)."""

    format: int = 1
    project_id: str
    #: The last position of the log in the copy.
    position: int
    taken_at: str
    whirr_version: str
    runs: bool
    source: str
    #: The archive segments copied (``archive/<name>``); a full replay needs every one.
    archive: list[str] = []


@dataclass(frozen=True)
class Restored:
    """What a restore did."""

    manifest: Manifest
    moved_aside: Path | None
    runs_added: int
    position: int


def backup(
    project: Project, dest: Path, *, runs: bool = True, say: Callable[[str], None] = print
) -> Manifest:
    """Copy ``project`` into the new directory ``dest``; returns its manifest."""
    if not project.db_path.exists():
        raise BackupError(f"no database at {project.db_path}: nothing to back up")
    known = read_project_id(project)
    if known is None:
        raise BackupError(
            f"{project.dir} has no {ID_FILE}: open the project once with this whirr "
            "(any command) so that it knows itself, then back it up"
        )
    _new_dir(dest)
    db_copy = dest / "whirr.db"
    # No retention pass moves rows while the log and its segments are copied: the copy's
    # live rows and segments are then the same cut of the history (a pass waits).
    # (A project on a read-only disk has no lock to take, and no pass can run there.)
    writable = os.access(project.dir, os.W_OK)
    with segments.held(project.db_path, wait=True) if writable else contextlib.nullcontext():
        _copy_db(project.db_path, db_copy)
        archived = _copy_archive(segments.directory(project.db_path), dest / segments.DIRECTORY)
    if archived:
        say(f"Copied {len(archived)} archive segment(s)")
    position = _last_position(db_copy)
    os.chmod(db_copy, 0o600)
    write_private(dest / ID_FILE, (project.dir / ID_FILE).read_bytes())
    config = project.dir / "config.yaml"
    if config.is_file():
        write_private(dest / "config.yaml", config.read_bytes())
    if runs and project.runs_dir.is_dir():
        count = _copy_runs(project.runs_dir, dest / "runs", say)
        say(f"Copied {count} run director{'y' if count == 1 else 'ies'}")
    from whirr import __version__

    manifest = Manifest(
        project_id=known[0],
        position=position,
        taken_at=datetime.now(UTC).isoformat().replace("+00:00", "Z"),
        whirr_version=__version__,
        runs=runs and project.runs_dir.is_dir(),
        source=str(project.dir),
        archive=archived,
    )
    write_private(dest / MANIFEST, msgspec.json.format(msgspec.json.encode(manifest)))
    return manifest


def read_manifest(src: Path) -> Manifest:
    """The manifest of the backup in ``src``, checked against its database."""
    try:
        manifest = msgspec.json.decode((src / MANIFEST).read_bytes(), type=Manifest)
    except FileNotFoundError:
        raise BackupError(f"{src} is not a whirr backup (no {MANIFEST})") from None
    except msgspec.DecodeError as exc:
        raise BackupError(f"{src / MANIFEST} is damaged: {exc}") from None
    db = src / "whirr.db"
    try:
        conn = apsw.Connection(str(db), flags=apsw.SQLITE_OPEN_READONLY)
    except apsw.Error as exc:
        raise BackupError(f"cannot open {db}: {exc}") from None
    try:
        check = conn.execute("PRAGMA integrity_check").fetchall()
        if check != [("ok",)]:
            raise BackupError(f"{db} fails SQLite's integrity check: {check[0][0]}")
        first = conn.execute("SELECT data FROM events ORDER BY position LIMIT 1").fetchall()
    except apsw.Error as exc:
        raise BackupError(f"{db} is not a whirr database: {exc}") from None
    finally:
        conn.close()
    from whirr.events import decode_lenient

    data = first[0][0] if first else None
    event = decode_lenient([data])[0] if isinstance(data, bytes | str) else None
    if not isinstance(event, ProjectCreated) or event.project_id != manifest.project_id:
        raise BackupError(f"{db} does not begin with project {manifest.project_id}'s history")
    missing = [n for n in manifest.archive if not (src / segments.DIRECTORY / n).is_file()]
    if missing:
        raise BackupError(
            f"{src} lacks {len(missing)} archive segment(s) its log needs "
            f"({segments.DIRECTORY}/{missing[0]}): its full replay would miss events"
        )
    return manifest


def restore(
    project: Project, src: Path, *, force: bool, say: Callable[[str], None] = print
) -> Restored:
    """Put the backup in ``src`` back as ``project``'s database (and add its missing run
    directories), then record it with ``project.restored``."""
    manifest = read_manifest(src)
    live = project.db_path.exists()
    if live and not force:
        raise BackupError(
            f"{project.db_path} exists: restoring replaces it (the current files are moved "
            "aside, not deleted); pass --force to do so"
        )
    private_dir(project.dir)
    aside = _move_aside(project) if live or (project.dir / ID_FILE).exists() else None
    copy = project.dir / ".whirr.db.restoring"
    shutil.copyfile(src / "whirr.db", copy)
    os.chmod(copy, 0o600)
    os.replace(copy, project.db_path)
    write_private(project.dir / ID_FILE, (src / ID_FILE).read_bytes())
    _copy_archive(src / segments.DIRECTORY, segments.directory(project.db_path))
    config = project.dir / "config.yaml"
    if (src / "config.yaml").is_file() and not config.exists():  # the project's own wins
        write_private(config, (src / "config.yaml").read_bytes())
    added = 0
    if (src / "runs").is_dir():
        added = _copy_runs(src / "runs", project.runs_dir, say)
    from whirr.identity import open_checked

    store = open_checked(project)
    try:
        event = ProjectRestored(
            source=str(src.resolve()),
            backup_position=manifest.position,
            backup_taken_at=manifest.taken_at,
            job_id_floor=highest_job_dir(project.runs_dir),
        )
        position = store.append([Pending(PROJECT_STREAM, event)])
    finally:
        store.close()
    return Restored(manifest=manifest, moved_aside=aside, runs_added=added, position=position)


def _copy_db(db: Path, copy: Path) -> None:
    source = apsw.Connection(str(db), flags=apsw.SQLITE_OPEN_READONLY)
    try:
        source.setbusytimeout(30_000)
        # VACUUM INTO reads in one transaction: the copy is the log as of one moment,
        # the WAL's contents included, while writers carry on.
        source.execute("VACUUM INTO ?", (str(copy),))
    except apsw.Error as exc:
        raise BackupError(f"could not copy {db}: {exc}") from None
    finally:
        source.close()


def _copy_archive(src: Path, dest: Path) -> list[str]:
    """Copy the segments in ``src`` (pending ones too: their rows may still be live, and
    the next retention pass finishes them) into ``dest``, read-only as they were; returns
    their names. Nothing when ``src`` holds none."""
    names = [s.name for s in segments.segments_in(src)]
    if not names:
        return []
    private_dir(dest)
    for name in names:
        target = dest / name
        scratch = dest / f".copying-{name}"
        shutil.copyfile(src / name, scratch)
        with open(scratch, "rb") as fh:
            os.fsync(fh.fileno())
        os.chmod(scratch, 0o600 if name.endswith(segments.PENDING) else 0o400)
        os.replace(scratch, target)
    return names


def _last_position(db: Path) -> int:
    conn = apsw.Connection(str(db), flags=apsw.SQLITE_OPEN_READONLY)
    try:
        found = conn.execute("SELECT COALESCE(MAX(position), 0) FROM events").fetchall()[0][0]
        return int(found) if isinstance(found, int | str) else 0
    finally:
        conn.close()


def _new_dir(dest: Path) -> None:
    if dest.exists() and (not dest.is_dir() or any(dest.iterdir())):
        raise BackupError(f"{dest} exists and is not an empty directory")
    try:
        dest.mkdir(mode=0o700, parents=True, exist_ok=True)
    except OSError as exc:
        raise BackupError(f"cannot create {dest}: {exc.strerror}") from None


def _move_aside(project: Project) -> Path:
    aside = project.dir / f"replaced-{datetime.now(UTC):%Y%m%d-%H%M%S-%f}"
    aside.mkdir(mode=0o700)
    for name in _DB_FILES:
        if (project.dir / name).exists():
            os.replace(project.dir / name, aside / name)
    return aside


def _copy_runs(src: Path, dest: Path, say: Callable[[str], None]) -> int:
    """Copy the run directories of ``src`` that ``dest`` lacks (never into an existing
    one, never through a symlink); returns how many."""
    private_dir(dest)
    count = 0
    for entry in sorted(os.scandir(src), key=lambda e: e.name):
        if not entry.is_dir(follow_symlinks=False) or (dest / entry.name).exists():
            continue
        shutil.copytree(entry.path, dest / entry.name, symlinks=True)
        count += 1
    return count
