"""Writing imported runs into a project: run files first, then the run's events in one
transaction, so an imported run is an ordinary run (``runs``, ``show``, ``compare``,
``export``, ``sql`` and the dashboard read it as any other).

Idempotent by construction: a source run always gets the same run id
(``<source>-<its id>``), and the events are appended only if the log has no run of that
id, decided under the store's write lock (two imports at once add it once). Files come
first, written in a scratch folder beside the runs and renamed into place under that lock
just before the events are appended; a folder left by an import stopped between the two
is one the log does not know, which the next import of that run replaces.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, BinaryIO

import msgspec

from whirr.events import (
    Pending,
    RunArtifactSaved,
    RunFinished,
    RunStarted,
    RunSummaryUpdated,
    run_stream,
)
from whirr.filemodes import private_dir, save_stream, write_private
from whirr.importers.model import ImportedRun
from whirr.importers.rows import metric_rows
from whirr.importers.values import finite
from whirr.run import write_meta
from whirr.store import EventStore
from whirr.store.protocol import ViewReader

#: Longest source tag kept as a whirr tag (``key=value``); longer ones are left out.
MAX_TAG = 200
_CHUNK = 1024 * 1024
_encode = msgspec.json.Encoder().encode


@dataclass(frozen=True, slots=True)
class Outcome:
    """What importing one run did: ``added`` False when the log had it already."""

    run_id: str
    added: bool
    rows: int
    artifacts: int


class Importer:
    """Adds imported runs to one project (its store and its ``runs/`` folder)."""

    def __init__(self, store: EventStore, runs_dir: Path) -> None:
        self.store = store
        self.runs_dir = runs_dir

    def known(self, run_id: str) -> bool:
        """Whether the log already has this run (imported before)."""
        return self.store.run(run_id) is not None

    def add(self, run: ImportedRun) -> Outcome:
        """Write ``run``'s files and record it, unless the log has it already."""
        if self.known(run.run_id):
            return Outcome(run.run_id, False, 0, 0)
        run_dir = self.runs_dir / run.run_id
        # Written aside, moved into place under the log's write lock: two imports of the
        # same run at once never write into one folder, and the loser's copy is dropped.
        scratch = Path(tempfile.mkdtemp(prefix=f".import-{run.run_id}-", dir=self.runs_dir))
        try:
            rows, saved = _write_files(run, scratch)
            events = _events(run, str(run_dir), saved)

            def decide(reader: ViewReader) -> list[Pending]:
                if reader.run(run.run_id) is not None:
                    return []
                if run_dir.exists():
                    shutil.rmtree(run_dir)  # files of an import stopped before its events
                scratch.rename(run_dir)
                return events

            added = bool(self.store.transact(decide))
        finally:
            if scratch.exists():
                shutil.rmtree(scratch)
        return Outcome(run.run_id, added, len(rows) if added else 0, len(saved) if added else 0)


def _write_files(run: ImportedRun, run_dir: Path) -> tuple[list[Any], list[tuple[str, int, str]]]:
    """The run's ``metrics.jsonl``, ``config.json``, ``meta.json`` and ``artifacts/`` in
    ``run_dir``: (the metric rows, (path, size, sha256) of each artifact)."""
    private_dir(run_dir / "artifacts")
    rows = metric_rows(run.points)
    write_private(run_dir / "metrics.jsonl", b"".join(_encode(r) + b"\n" for r in rows))
    write_private(run_dir / "config.json", _encode(finite(run.config)))
    saved = [
        (artifact.path, *_copy(artifact.source, run_dir / "artifacts" / artifact.path))
        for artifact in run.artifacts
    ]
    write_meta(run_dir, _meta(run))
    return rows, saved


def tags_of(run: ImportedRun) -> list[str]:
    """The run's whirr tags: ``import:<source>`` first, then the source's own."""
    own = [t for t in run.tags if t and len(t) <= MAX_TAG]
    return list(dict.fromkeys([f"import:{run.source}", *own]))


def _events(run: ImportedRun, run_dir: str, saved: list[tuple[str, int, str]]) -> list[Pending]:
    stream = run_stream(run.run_id)
    out = [
        Pending(
            stream,
            RunStarted(
                run_id=run.run_id,
                run_dir=run_dir,
                name=run.name,
                config=finite(run.config),
                tags=tags_of(run),
                started_at=_time(run.started),
                source=f"{run.source}:{run.key}",
            ),
        )
    ]
    if run.summary:
        summary = RunSummaryUpdated(run_id=run.run_id, summary=finite(run.summary))
        out.append(Pending(stream, summary))
    for path, size, sha256 in saved:
        artifact = RunArtifactSaved(run_id=run.run_id, path=path, size=size, sha256=sha256)
        out.append(Pending(stream, artifact))
    finished = _time(_finished(run))
    end = RunFinished(run_id=run.run_id, status=run.status, error=run.error, finished_at=finished)
    out.append(Pending(stream, end))
    return out


def _meta(run: ImportedRun) -> dict[str, Any]:
    started = _time(run.started)
    finished = _time(_finished(run))
    return {
        "id": run.run_id,
        "name": run.name,
        "tags": tags_of(run),
        "status": run.status,
        "started_at": _iso(started),
        "finished_at": _iso(finished),
        "duration_seconds": round((finished - started).total_seconds(), 3),
        "summary": finite(run.summary),
        "config_file": "config.json",
        "metrics_file": "metrics.jsonl",
        "artifacts_dir": "artifacts",
        "git": None,
        "job_id": None,
        "error": run.error,
        "source": f"{run.source}:{run.key}",
    }


def _finished(run: ImportedRun) -> float:
    """When the run ended: as the source says, else (a run the source has as still
    running) its last logged point, else its start."""
    if run.finished is not None:
        return run.finished
    return max((p.time for p in run.points), default=run.started)


def _copy(source: Path, target: Path) -> tuple[int, str]:
    """Copy one artifact: (size, sha256)."""
    private_dir(target.parent)
    with source.open("rb") as f:
        return save_stream(target, _chunks(f), None)


def _chunks(f: BinaryIO) -> Iterator[bytes]:
    while chunk := f.read(_CHUNK):
        yield chunk


def _time(epoch: float) -> datetime:
    return datetime.fromtimestamp(epoch, UTC)


def _iso(at: datetime) -> str:
    return at.isoformat().replace("+00:00", "Z")
