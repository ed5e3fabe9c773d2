"""A project knows itself: its id is in the log's first event (``project.created``) and in
``.whirr/project-id`` beside the database. Opening the store checks one against the other,
so a database that was deleted, emptied, replaced or cut short, or whose WAL is damaged,
is reported loudly instead of silently becoming an empty history (with job ids starting
again at 1 and new jobs writing into old runs' directories).

``.whirr/project-id`` holds the id, and after it the log position of that event when it is
not the first (a log begun by an older whirr, which gets the event when first opened).
"""

from __future__ import annotations

import os
import re
import struct
import uuid
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from whirr.clock import UTC
from whirr.events import PROJECT_STREAM, Pending, ProjectCreated
from whirr.filemodes import write_private
from whirr.store.protocol import ConflictError, StoreError

if TYPE_CHECKING:
    from whirr.store.protocol import EventStore
    from whirr.store.sqlite import SQLiteStore

ID_FILE = "project-id"
_JOB_DIR = re.compile(r"job-(\d{1,18})")
_WAL_MAGIC = (0x377F0682, 0x377F0683)
_WAL_VERSION = 3007000
_WAL_HEADER = 32
_FRAME_HEADER = 24


class Project(Protocol):
    """What is used of ``whirr.project.Project`` (which imports this module), or of a
    server's data dir (``DataDir``)."""

    dir: Path
    db_path: Path
    runs_dir: Path


class DataDir:
    """A ``whirr server`` data dir, known the way a project is: ``project-id`` and
    ``runs/`` lie directly in it, and ``whirr.db`` too unless the log is in PostgreSQL
    (``database_url``: then ``project-id`` names that database's first event)."""

    def __init__(self, root: Path, database_url: str | None = None) -> None:
        self.root = root
        self.dir = root
        self.db_path = root / "whirr.db"
        self.runs_dir = root / "runs"
        self.database_url = database_url


def _way_out(project: Project) -> str:
    if isinstance(project, DataDir) and project.database_url:
        return (
            "Restore the database from a backup (pg_restore), or adopt this database as "
            f"the server's history on purpose with `whirr server -d {project.root} "
            "--database-url URL --force-new-history` (the data dir's project-id is kept aside)"
        )
    command = (
        f"whirr server -d {project.root} --force-new-history"
        if isinstance(project, DataDir)
        else "whirr init --force-new-history"
    )
    return (
        "Restore whirr.db together with whirr.db-wal from a backup (`whirr restore`), or "
        f"start over deliberately with `{command}` (the old files are kept aside)"
    )


class HistoryLost(StoreError):
    """The database does not hold this project's history (lost, emptied, replaced, or
    its WAL damaged)."""

    def __init__(self, project: Project, what: str) -> None:
        where = (
            "the database"
            if isinstance(project, DataDir) and project.database_url
            else str(project.db_path)
        )
        super().__init__(f"{what}: this project's history is not in {where}. {_way_out(project)}")


def open_checked(project: Project) -> SQLiteStore:
    """The SQLite store of ``project`` (or a server's ``DataDir``), checked to hold its
    history: ``check_files`` before SQLite could create or reset anything, then
    ``check_store``."""
    from whirr.store.sqlite import SQLiteStore

    check_files(project)
    store = SQLiteStore(str(project.db_path))
    try:
        check_store(project, store)
    except BaseException:
        store.close()
        raise
    return store


def read_project_id(project: Project) -> tuple[str, int] | None:
    """(id, position of its event) from ``.whirr/project-id``; None when there is none."""
    try:
        parts = (project.dir / ID_FILE).read_text().split()
    except (FileNotFoundError, UnicodeDecodeError):
        return None
    if not parts:
        return None
    position = int(parts[1]) if len(parts) > 1 and parts[1].isdigit() else 1
    return parts[0], position


def check_files(project: Project) -> None:
    """Before SQLite opens (and would create or reset) anything: a project that has an id
    must still have its database, not empty, with an undamaged WAL."""
    if read_project_id(project) is None:
        return  # a new project, or one made by an older whirr: nothing to compare with
    db = project.db_path
    try:
        size = db.stat().st_size
    except FileNotFoundError:
        raise HistoryLost(project, f"{db} is missing") from None
    if size == 0:
        raise HistoryLost(project, f"{db} is empty (0 bytes)")
    damage = wal_damage(db, frames=1)
    if damage:
        raise HistoryLost(project, damage)


def check_store(project: Project, store: EventStore) -> None:
    """The opened log holds this project's ``project.created`` where the id file says;
    a project without an id file gets one (and its log the event, when missing)."""
    known = read_project_id(project)
    if known is None:
        _establish(project, store)
        return
    project_id, position = known
    first = store.read(after=position - 1, limit=1)
    if not first:
        raise HistoryLost(project, f"{project.db_path} holds no history")
    record = first[0]
    event = record.event
    if record.position != position or not isinstance(event, ProjectCreated):
        raise HistoryLost(
            project,
            f"{project.db_path} does not begin with this project's project.created event "
            f"(a replaced or cut database)",
        )
    if event.project_id != project_id:
        raise HistoryLost(
            project,
            f"{project.db_path} belongs to another project ({event.project_id}; this one "
            f"is {project_id})",
        )


def _establish(project: Project, store: EventStore, *, replaces_lost: bool = False) -> None:
    """Give a project without an id file one: a new log begins with ``project.created``;
    an older whirr's log gets it appended; a log that has one (the file was lost) keeps it."""
    first = store.read(limit=1)
    if first and isinstance(first[0].event, ProjectCreated):
        _write_id(project, first[0].event.project_id, first[0].position)
        return
    event = ProjectCreated(
        project_id=uuid.uuid4().hex,
        job_id_floor=highest_job_dir(project.runs_dir),
        replaces_lost_history=replaces_lost,
    )
    try:
        position = store.append([Pending(PROJECT_STREAM, event)], expect=0 if not first else None)
    except ConflictError:  # another process began the log first: adopt its event
        _establish(project, store)
        return
    _write_id(project, event.project_id, position)


def _write_id(project: Project, project_id: str, position: int) -> None:
    text = project_id if position == 1 else f"{project_id} {position}"
    path = project.dir / ID_FILE
    tmp = path.with_name(f".{ID_FILE}.{os.getpid()}.tmp")
    write_private(tmp, (text + "\n").encode())
    os.replace(tmp, path)


def highest_job_dir(runs_dir: Path) -> int:
    """The largest N of the ``runs/job-N`` directories (0 when none)."""
    try:
        names = os.listdir(runs_dir)
    except OSError:
        return 0
    numbers = [int(m.group(1)) for name in names if (m := _JOB_DIR.fullmatch(name))]
    return max(numbers, default=0)


def start_new_history(project: Project) -> Path | None:
    """Move the database files (and the id file) aside into ``.whirr/lost-<time>/`` and
    begin a new log whose job ids start above every ``runs/job-N``. Returns where the old
    files went (None when there were none)."""
    names = ("whirr.db", "whirr.db-wal", "whirr.db-shm", ID_FILE)
    present = [name for name in names if (project.dir / name).exists()]
    aside = None
    if present:
        aside = project.dir / f"lost-{datetime.now(UTC):%Y%m%d-%H%M%S}"
        aside.mkdir(mode=0o700)
        for name in present:
            os.replace(project.dir / name, aside / name)
    from whirr.store.sqlite import SQLiteStore

    store = SQLiteStore(str(project.db_path))
    try:
        _establish(project, store, replaces_lost=True)
    finally:
        store.close()
    return aside


def adopt_database(place: DataDir, store: EventStore) -> Path | None:
    """A server on PostgreSQL whose data dir names another history: keep the data dir's
    ``project-id`` aside (in ``lost-<time>/``) and take the database's history as the
    server's (giving it a ``project.created`` when it has none). Returns where the old
    id file went."""
    aside = None
    if (place.dir / ID_FILE).exists():
        aside = place.dir / f"lost-{datetime.now(UTC):%Y%m%d-%H%M%S}"
        aside.mkdir(mode=0o700)
        os.replace(place.dir / ID_FILE, aside / ID_FILE)
    _establish(place, store, replaces_lost=True)
    return aside


# -- the WAL ------------------------------------------------------------------------------
def wal_damage(db: Path, frames: int | None = None) -> str | None:
    """What is wrong with ``db``'s WAL, or None. SQLite silently ignores a WAL whose header
    or frames fail their checksums, and with it every transaction not yet copied into
    the database: for a small project, its whole history. ``frames`` bounds how many
    frames are checked (None: all, as ``whirr doctor`` does)."""
    wal = db.with_name(db.name + "-wal")
    try:
        fh = open(wal, "rb")  # noqa: SIM115  # closed below
    except FileNotFoundError:
        return None
    with fh:
        size = os.fstat(fh.fileno()).st_size
        if size == 0:
            return None
        header = fh.read(_WAL_HEADER)
        if len(header) < _WAL_HEADER:
            return f"{wal} is cut short ({size} bytes)"
        magic, version, page_size, _, salt1, salt2, check1, check2 = struct.unpack(">8I", header)
        if magic not in _WAL_MAGIC or version != _WAL_VERSION:
            return f"{wal} is damaged (not a SQLite WAL header)"
        order = ">" if magic & 1 else "<"
        sums = _checksum(header[:24], order, 0, 0)
        if sums != (check1, check2):
            return f"{wal} is damaged (its header fails its checksum)"
        bad_at: int | None = None
        number = 0
        while True:
            frame_header = fh.read(_FRAME_HEADER)
            if len(frame_header) < _FRAME_HEADER:
                break  # the end of what was written
            checking = bad_at is None and (frames is None or number < frames)
            if bad_at is None and not checking:
                break  # as many frames as asked for are sound
            number += 1
            _, commit, fsalt1, fsalt2, fcheck1, fcheck2 = struct.unpack(">6I", frame_header)
            if (fsalt1, fsalt2) != (salt1, salt2):
                break  # a frame of an earlier use of the file: the end of this one
            if checking:
                page = fh.read(page_size)
                if len(page) < page_size:
                    break  # a frame cut short: never committed
                sums = _checksum(frame_header[:8] + page, order, *sums)
                if sums != (fcheck1, fcheck2):
                    bad_at = number
            else:  # after a damaged frame only the headers matter: is anything committed?
                fh.seek(page_size, os.SEEK_CUR)
            if bad_at is not None and commit:
                # A committed transaction at or after a damaged frame: SQLite drops it.
                return f"{wal} is damaged (frame {bad_at} fails its checksum)"
    return None


def _checksum(data: bytes, order: str, s0: int, s1: int) -> tuple[int, int]:
    """SQLite's WAL checksum of ``data`` (a multiple of 8 bytes), continuing (s0, s1)."""
    words = struct.unpack(f"{order}{len(data) // 4}I", data)
    mask = 0xFFFFFFFF
    for i in range(0, len(words), 2):
        s0 = (s0 + words[i] + s1) & mask
        s1 = (s1 + words[i + 1] + s0) & mask
    return s0, s1
