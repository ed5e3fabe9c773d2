"""Checkpoints of a SQLite project, and the rebuild that starts from one.

A checkpoint is a file ``checkpoints/views-<position>.db`` beside ``whirr.db``: a whirr
database of the same schema whose log is empty and whose view tables hold the views at
that position, plus one stamp row (``Stamp``) saying which position, which code folded
them and which events sit at positions 1 and P of the log it belongs to. It is built as
a scratch file and renamed into place once complete (and fsynced), so a reader never
finds half a checkpoint under that name.

A rebuild copies the newest valid checkpoint to a scratch file (or starts an empty one
for a full replay), folds the log's tail into it in batches of ``checkpoints.BATCH``
events *without* the project's write lock, and only then takes the lock to replace the
live views by the scratch's (one INSERT ... SELECT per table) and fold the few events
appended meanwhile. The scratch file then becomes the next checkpoint. Memory is one
batch of events, at most ``Scratch.CACHE`` views and SQLite's page caches, whatever the
log's length.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Protocol

import apsw
import msgspec

from whirr.events import Recorded
from whirr.filemodes import create_private_file
from whirr.projections import fold_touched
from whirr.store import checkpoints
from whirr.store.checkpoints import Stamp
from whirr.store.protocol import StoreError
from whirr.store.retention_history import History
from whirr.store.scratch_files import fsync_path, remove_stale_scratches
from whirr.store.sql import load_queries

_Q = load_queries("whirr.store.sqlite", "queries.sql")
DIRECTORY = "checkpoints"
#: Checkpoints kept: the newest, and the one before it in case the newest goes bad.
KEEP = 2
_NAME = re.compile(r"^views-(\d{12})\.db$")


class SQLiteStore(Protocol):
    """What checkpoints use of a SQLite store (store.py; a protocol, as that module
    imports this one)."""

    path: str
    checkpoint_every: int

    def _conn(self) -> apsw.Connection: ...
    def _query(self, sql: str, params: Any = ()) -> list[Any]: ...
    def head(self) -> int: ...
    def read(self, after: int = 0, limit: int | None = None) -> list[Recorded]: ...
    def schema_version(self) -> int: ...
    def sibling(self, path: str) -> SQLiteStore: ...
    def view(self, name: str, key: Any) -> Any: ...
    def write_views(self, views: dict[tuple[str, Any], Any]) -> None: ...
    def swap_views(self, source: str, position: int) -> int: ...
    def close(self) -> None: ...


def directory(store: SQLiteStore) -> Path:
    """Where ``store``'s checkpoints live (beside its database file)."""
    return Path(store.path).parent / DIRECTORY


def event_digest(store: SQLiteStore, position: int) -> str:
    """A digest of the event at ``position`` (its time, type and bytes); "" for none."""
    rows = store._query(_Q["event_stamp"], (position,)) if position > 0 else []
    if not rows:
        return ""
    us, kind, data = rows[0]
    data = data.encode() if isinstance(data, str) else bytes(data)
    return hashlib.sha256(f"{us}:{kind}:".encode() + data).hexdigest()


def stamp_for(store: SQLiteStore, position: int) -> Stamp:
    """The stamp of a checkpoint of ``store``'s views at ``position``."""
    return Stamp(
        format=checkpoints.FORMAT,
        fingerprint=checkpoints.fingerprint(),
        schema=store.schema_version(),
        position=position,
        first=event_digest(store, 1),
        last=event_digest(store, position),
    )


def saved(store: SQLiteStore) -> list[tuple[int, Path]]:
    """``store``'s checkpoint files, newest first, by the position in their names."""
    try:
        names = os.listdir(directory(store))
    except FileNotFoundError:
        return []
    found = [(int(m.group(1)), directory(store) / n) for n in names if (m := _NAME.match(n))]
    return sorted(found, reverse=True)


def why_invalid(store: SQLiteStore, path: Path, head: int) -> str | None:
    """Why the checkpoint at ``path`` must not be trusted for ``store`` (None: it may)."""
    try:
        conn = apsw.Connection(str(path), flags=apsw.SQLITE_OPEN_READONLY)
        try:
            version = conn.execute("PRAGMA user_version").fetchall()[0][0]
            rows = conn.execute(_Q["checkpoint_stamp_get"]).fetchall()
            # Every page and index entry read once: a torn or bit-rotten file fails here
            # (a checkpoint is small beside the log, and read whole by the restore anyway).
            checked = conn.execute("PRAGMA quick_check").fetchall()
        finally:
            conn.close()
    except apsw.Error as exc:
        return f"it cannot be read ({exc})"
    if checked != [("ok",)]:
        return f"it is corrupt ({checked[0][0]})"
    if not rows or not isinstance(rows[0][0], bytes | str):
        return "it has no stamp"
    try:
        stamp = msgspec.json.decode(rows[0][0], type=Stamp)
    except msgspec.DecodeError:
        return "its stamp does not decode"
    if version != stamp.schema:
        return "it is of another format"
    return checkpoints.why_untrusted(
        stamp, store.schema_version(), head, lambda position: stamp_for(store, position)
    )


class Scratch:
    """A checkpoint under construction: a private copy of a database of views that the
    log's events are folded into, sealed into a checkpoint at the position it reached.

    The views it folds are cached (up to ``CACHE`` of them) and written back when the
    cache is full and before anything reads the file: most views are touched by events
    close together (a job's life), some by events all along the log (a worker's), and
    either way each is then read and written about once instead of once per batch."""

    #: Views kept in memory between batches (~40 MB of typical job and run views).
    CACHE = 20_000

    def __init__(self, owner: SQLiteStore, path: Path, position: int) -> None:
        self.owner = owner
        self.path = path
        self.position = position
        self.replayed = 0
        # The log as written: live rows and archived liveness events (retention), merged.
        self._history = History(owner)
        self.views = owner.sibling(str(path))
        self.views.checkpoint_every = 0
        conn = self.views._conn()
        # Nothing here is trusted until sealed: no fsync per batch.
        conn.execute("PRAGMA synchronous=OFF")
        conn.execute(_Q["checkpoint_stamp_create"])
        conn.execute(_Q["checkpoint_stamp_clear"])
        self._cache: dict[tuple[str, Any], Any] = {}
        self._dirty: dict[tuple[str, Any], Any] = {}
        #: Started empty: a view never written is known to be absent without a query.
        self._empty = position == 0
        self._written: set[tuple[str, Any]] = set()

    def catch_up(self, lag: int = 0, upto: int | None = None) -> None:
        """Fold the owner's events after ``position`` until at most ``lag`` are left
        before the head (or, with ``upto``, up to that position); then write the views."""
        with checkpoints.fewer_collections():
            while (upto if upto is not None else self.owner.head() - lag) > self.position:
                limit = checkpoints.BATCH
                if upto is not None:
                    limit = min(limit, upto - self.position)
                batch = self._history.read(self.position, limit)
                if not batch:
                    break
                self._fold(batch)
                self.position = batch[-1].position
                self.replayed += len(batch)
            self.flush()

    def _fold(self, batch: list[Recorded]) -> None:
        changed = fold_touched(batch, self._current)
        self._cache.update(changed)
        self._dirty.update(changed)
        if len(self._cache) > self.CACHE:
            self.flush()
            self._cache.clear()

    def _current(self, name: str, key: Any) -> Any:
        slot = (name, key)
        if slot in self._cache:
            return self._cache[slot]
        if self._empty and slot not in self._written and name != "queue":
            view = None
        else:
            view = self.views.view(name, key)
        self._cache[slot] = view
        return view

    def flush(self) -> None:
        """Write the views changed since the last flush."""
        if self._dirty:
            self.views.write_views(self._dirty)
            if self._empty:
                self._written.update(self._dirty)
            self._dirty = {}

    def seal(self) -> int:
        """Make this the owner's newest checkpoint; returns its position."""
        stamp = stamp_for(self.owner, self.position)
        conn = self.views._conn()
        conn.execute(_Q["checkpoint_stamp_put"], (msgspec.json.encode(stamp),))
        # One self-contained file (no -wal beside it), then on disk before its name.
        conn.execute("PRAGMA journal_mode=DELETE")
        self.views.close()
        fsync_path(self.path)
        target = self.path.parent / f"views-{self.position:012d}.db"
        os.replace(self.path, target)
        fsync_path(self.path.parent)
        for _, old in saved(self.owner)[KEEP:]:
            with contextlib.suppress(FileNotFoundError):
                old.unlink()
        return self.position

    def discard(self) -> None:
        """Remove the scratch file (after a failure)."""
        self.views.close()
        for suffix in ("", "-wal", "-shm", "-journal"):
            with contextlib.suppress(FileNotFoundError):
                Path(f"{self.path}{suffix}").unlink()


@contextlib.contextmanager
def scratch(owner: SQLiteStore, *, full: bool) -> Iterator[Scratch]:
    """A scratch copy of the newest valid checkpoint (an empty one: ``full`` or none is
    valid; each invalid one is named in a warning); discarded unless sealed."""
    where = directory(owner)
    try:
        where.mkdir(mode=0o700, exist_ok=True)
    except OSError as exc:
        raise StoreError(f"cannot create {where}: {exc.strerror}") from exc
    remove_stale_scratches(where)
    path = where / f".scratch-{os.getpid()}-{uuid.uuid4().hex[:8]}.db"
    start = 0
    if not full:
        head = owner.head()
        for position, candidate in saved(owner):
            # Checked in the private copy, which no other process replaces or prunes.
            create_private_file(path)  # 0600 before a byte is copied: views hold commands
            try:
                shutil.copyfile(candidate, path)
            except OSError as exc:
                why: str | None = f"it cannot be read ({exc.strerror})"
            else:
                why = why_invalid(owner, path, head)
            if why is None:
                start = position
                break
            path.unlink(missing_ok=True)
            checkpoints.warn(
                f"ignored the checkpoint at position {position} ({candidate}): {why}; "
                "replaying from an older one or from the start"
            )
    made = Scratch(owner, path, start)
    try:
        yield made
    except BaseException:
        made.discard()
        raise
    if path.exists():  # not sealed: nothing to keep
        made.discard()


def take(owner: SQLiteStore) -> int:
    """Write a checkpoint at the log's head, folded forward from the newest valid one
    (not copied from the live views); returns its position. Takes no write lock."""
    with scratch(owner, full=False) as made:
        made.catch_up()
        return made.seal()


def rebuild(owner: SQLiteStore, *, full: bool) -> int:
    """Replace the live views by a replay from the newest valid checkpoint (``full``:
    from position 0); returns the number of events replayed. The write lock is held
    only for the last step: copying the views in and folding the last few events."""
    with scratch(owner, full=full) as made:
        made.catch_up(lag=checkpoints.BATCH)
        made.catch_up(lag=checkpoints.BATCH // 10)
        reached = owner.swap_views(str(made.path), made.position)
        # The few events folded under the lock, folded into the checkpoint too.
        made.catch_up(upto=reached)
        made.seal()
        return made.replayed
