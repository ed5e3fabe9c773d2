"""What deleting a run (``whirr runs delete``) removes, and how its id stays deleted.

A deleted run's view is a tombstone no reader returns, so a reader cannot tell a deleted
run from one that never was; the log can (``run.deleted`` in the run's stream, indexed
by stream), and is asked only when a run is not found: ``missing_run`` answers 410
``run_deleted`` for a deleted run (uploads a worker still sends, a start with its id) and
404 for an unknown one.

Files: the run directory (``remove_run_dir``) here; on a server also the shipping index,
partial uploads and the objects of an S3 artifact store (``whirr.services.server_removal``).
Each is removed after ``run.deleted`` is in the log, and every writer of them either
checks under a lock the delete's removal also takes (shipping) or looks again after
writing and takes back what it wrote when the run was deleted meanwhile (artifact
uploads): whichever comes second removes the files, so nothing is left behind.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from whirr.events import run_stream
from whirr.services.errors import NotFound, WhirrError
from whirr.services.run_files import check_run_id
from whirr.store import EventStore


class RunGone(WhirrError):
    """The run was deleted: its id is not used again (410, ``reason: run_deleted``)."""

    status = 410
    reason = "run_deleted"

    def fields(self) -> dict[str, object]:
        return {"reason": self.reason}


def was_deleted(store: EventStore, run_id: str) -> bool:
    """Whether the log records that ``run_id`` was deleted (once deleted, always)."""
    return bool(store.read(stream=run_stream(run_id), types=["run.deleted"], limit=1))


def missing_run(store: EventStore, run_id: str) -> WhirrError:
    """The error for a run the views do not have: ``RunGone`` when it was deleted,
    ``NotFound`` otherwise."""
    if was_deleted(store, run_id):
        return RunGone(
            f"run {run_id} was deleted (whirr runs delete): it takes no more files, "
            "and its id is not used again"
        )
    return NotFound(f"no run {run_id!r}")


def remove_run_dir(runs_dir: Path, run_id: str) -> bool:
    """Remove ``runs_dir/<run_id>`` and everything in it; whether there was one. A symlink
    in its place is unlinked, never followed (nor are links inside: ``rmtree`` unlinks
    them), so a run directory pointing elsewhere cannot take that place's files along."""
    path = runs_dir / check_run_id(run_id)
    if path.is_symlink():
        path.unlink()
        return True
    if not path.is_dir():
        return False
    remove_tree(path)
    return True


def remove_cached_copies(cache_dir: Path | None, run_id: str) -> bool:
    """Remove the derived copies of a deleted run under ``cache_dir`` (whether there were
    any): the Parquet copies of its segments (``<kind>/<run_id>.<size>.<mtime>.parquet``,
    ``whirr.analytics.cache``) and a client's mirror of a server's run files
    (``runs/<run_id>/``, ``whirr.facade.mirror``). Copies of nothing, they would only
    linger: nothing reads a deleted run."""
    if cache_dir is None:
        return False
    check_run_id(run_id)
    found = False
    try:
        kinds = [k for k in cache_dir.iterdir() if k.is_dir() and not k.is_symlink()]
    except OSError:
        return False
    for kind in kinds:
        if kind.name == "runs":
            found = remove_run_dir(kind, run_id) or found
            continue
        for copy in kind.glob(f"{run_id}.*.parquet"):
            if copy.name.rsplit(".", 3)[0] == run_id:  # not another id that starts so
                copy.unlink(missing_ok=True)
                found = True
    return found


def remove_tree(path: Path) -> None:
    """``rmtree`` that lets a racing remover (a writer taking back what it wrote) take
    some of the entries first; any other error is raised."""
    for _ in range(_RACES):
        try:
            shutil.rmtree(path)
            return
        except FileNotFoundError:
            if not path.exists():
                return
    shutil.rmtree(path)


#: How many times ``remove_tree`` starts again when entries vanish under it.
_RACES = 5
