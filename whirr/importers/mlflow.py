"""Reading MLflow's tracking stores without MLflow: the ``file:`` store (the ``mlruns/``
directory of YAML and text files) and a ``sqlite:`` database (MLflow's SQLAlchemy
schema, read with the standard library's ``sqlite3``, read-only).

Both layouts are plain and documented by what MLflow writes; reading them directly keeps
``whirr import mlflow`` free of MLflow's dependencies (SQLAlchemy, alembic, ...). Deleted
runs and experiments (``lifecycle_stage: deleted``, the ``.trash`` folder) are skipped.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlparse

import yaml

from whirr.importers.model import Artifact, ImportedRun, Outcome, Point, SourceError
from whirr.importers.values import param_value, run_id_for

SOURCE = "mlflow"
#: MLflow's RunStatus (the file store writes the number, the database the name).
_STATUS_NUMBERS = {1: "RUNNING", 2: "SCHEDULED", 3: "FINISHED", 4: "FAILED", 5: "KILLED"}
_OUTCOMES: dict[str, Outcome] = {"FINISHED": "completed", "FAILED": "failed", "KILLED": "killed"}
#: MLflow's own tags that say something whirr keeps elsewhere (or nothing useful).
_RUN_NAME_TAG = "mlflow.runName"


def read(uri: str) -> Iterator[ImportedRun]:
    """Every run of the store at ``uri``: ``sqlite:///path/mlflow.db``, ``file:///path``,
    or a plain path (an ``mlruns`` directory, or a ``.db`` file)."""
    if uri.startswith("sqlite:"):
        # As SQLAlchemy reads it: sqlite:///mlflow.db is relative, sqlite:////abs/x.db not.
        rest = uri.removeprefix("sqlite:").removeprefix("//")
        yield from read_sqlite(Path(rest.removeprefix("/")))
        return
    if uri.startswith("file:"):
        yield from read_file_store(Path(unquote(urlparse(uri).path)))
        return
    path = Path(uri)
    if path.is_file():
        yield from read_sqlite(path)
    else:
        yield from read_file_store(path)


# -- the file store ------------------------------------------------------------------
def read_file_store(root: Path) -> Iterator[ImportedRun]:
    """The runs of an ``mlruns`` directory, experiment by experiment."""
    if not root.is_dir():
        raise SourceError(f"no MLflow store at {root} (not a directory)")
    experiments = sorted(p for p in root.iterdir() if (p / "meta.yaml").is_file())
    if not experiments:
        raise SourceError(f"no MLflow experiments in {root} (no <id>/meta.yaml)")
    for exp_dir in experiments:
        exp = _yaml(exp_dir / "meta.yaml")
        if exp.get("lifecycle_stage") == "deleted":
            continue
        for run_dir in sorted(p for p in exp_dir.iterdir() if (p / "meta.yaml").is_file()):
            meta = _yaml(run_dir / "meta.yaml")
            if meta.get("lifecycle_stage") == "deleted":
                continue
            yield _file_run(run_dir, meta, str(exp.get("name") or exp_dir.name))


def _file_run(run_dir: Path, meta: dict[str, Any], experiment: str) -> ImportedRun:
    run_uuid = str(meta.get("run_id") or meta.get("run_uuid") or run_dir.name)
    params = {k: v for k, v in _key_files(run_dir / "params")}
    tags = dict(_key_files(run_dir / "tags"))
    points: list[Point] = []
    metrics_dir = run_dir / "metrics"
    for key, path in _key_paths(metrics_dir):
        for line in path.read_text(errors="replace").splitlines():
            parts = line.split()
            if len(parts) < 2:
                continue  # a torn last line
            step = int(parts[2]) if len(parts) > 2 else 0
            points.append(Point(key, float(parts[1]), step, int(parts[0]) / 1000))
    status = meta.get("status")
    status_name = _STATUS_NUMBERS.get(status, str(status)) if isinstance(status, int) else status
    artifacts_dir = _local_dir(meta.get("artifact_uri")) or run_dir / "artifacts"
    if not artifacts_dir.is_dir():
        artifacts_dir = run_dir / "artifacts"
    return _build(
        run_uuid,
        name=meta.get("run_name") or tags.get(_RUN_NAME_TAG),
        experiment=experiment,
        status=str(status_name or ""),
        start_ms=meta.get("start_time"),
        end_ms=meta.get("end_time"),
        params=params,
        tags=tags,
        points=points,
        artifacts_dir=artifacts_dir,
    )


def _key_paths(folder: Path) -> Iterator[tuple[str, Path]]:
    """(key, file) under ``folder``: MLflow keys with ``/`` are nested folders."""
    if not folder.is_dir():
        return
    for path in sorted(folder.rglob("*")):
        if path.is_file():
            yield path.relative_to(folder).as_posix(), path


def _key_files(folder: Path) -> Iterator[tuple[str, str]]:
    for key, path in _key_paths(folder):
        yield key, path.read_text(errors="replace")


def _yaml(path: Path) -> dict[str, Any]:
    try:
        data = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError) as exc:
        raise SourceError(f"cannot read {path}: {exc}") from None
    return data if isinstance(data, dict) else {}


# -- the database --------------------------------------------------------------------
def read_sqlite(path: Path) -> Iterator[ImportedRun]:
    """The runs of an MLflow SQLite database, opened read-only."""
    if not path.is_file():
        raise SourceError(f"no MLflow database at {path}")
    try:
        db = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True)
    except sqlite3.Error as exc:
        raise SourceError(f"cannot open {path}: {exc}") from None
    try:
        yield from _sqlite_runs(db, path)
    except sqlite3.DatabaseError as exc:
        raise SourceError(f"{path} is not an MLflow database ({exc})") from None
    finally:
        db.close()


def _sqlite_runs(db: sqlite3.Connection, path: Path) -> Iterator[ImportedRun]:
    experiments = {
        row[0]: row[1]
        for row in db.execute(
            "SELECT experiment_id, name FROM experiments WHERE lifecycle_stage != 'deleted'"
        )
    }
    runs = db.execute(
        "SELECT run_uuid, name, status, start_time, end_time, artifact_uri, experiment_id"
        " FROM runs WHERE lifecycle_stage != 'deleted' ORDER BY start_time, run_uuid"
    ).fetchall()
    for run_uuid, name, status, start_ms, end_ms, artifact_uri, exp_id in runs:
        if exp_id not in experiments:
            continue
        params = dict(db.execute("SELECT key, value FROM params WHERE run_uuid = ?", (run_uuid,)))
        tags = dict(db.execute("SELECT key, value FROM tags WHERE run_uuid = ?", (run_uuid,)))
        points = [
            Point(key, None if is_nan else float(value), int(step), int(ts) / 1000)
            for key, value, step, ts, is_nan in db.execute(
                "SELECT key, value, step, timestamp, is_nan FROM metrics WHERE run_uuid = ?"
                " ORDER BY timestamp, step",
                (run_uuid,),
            )
        ]
        artifacts_dir = _local_dir(artifact_uri)
        if artifacts_dir is not None and not artifacts_dir.is_absolute():
            artifacts_dir = path.parent / artifacts_dir  # relative to where MLflow ran
        yield _build(
            run_uuid,
            name=name or tags.get(_RUN_NAME_TAG),
            experiment=str(experiments[exp_id]),
            status=str(status or ""),
            start_ms=start_ms,
            end_ms=end_ms,
            params=params,
            tags=tags,
            points=points,
            artifacts_dir=artifacts_dir,
        )


# -- shared ------------------------------------------------------------------------
def _local_dir(uri: Any) -> Path | None:
    """The directory an artifact URI names on this machine (None: remote, e.g. s3://)."""
    if not isinstance(uri, str) or not uri:
        return None
    parsed = urlparse(uri)
    if parsed.scheme == "file":
        return Path(unquote(parsed.path))
    if parsed.scheme == "" or len(parsed.scheme) == 1:  # a path (or a Windows drive)
        return Path(uri)
    return None


def _build(
    run_uuid: str,
    *,
    name: Any,
    experiment: str,
    status: str,
    start_ms: Any,
    end_ms: Any,
    params: dict[str, str],
    tags: dict[str, str],
    points: list[Point],
    artifacts_dir: Path | None,
) -> ImportedRun:
    started = int(start_ms) / 1000 if start_ms else min((p.time for p in points), default=0.0)
    finished = int(end_ms) / 1000 if end_ms else None
    outcome = _OUTCOMES.get(status.upper())
    error = None
    if outcome is None:
        outcome, error = "crashed", f"MLflow had it {status or 'with no status'} when imported"
    artifacts = []
    if artifacts_dir is not None and artifacts_dir.is_dir():
        artifacts = [
            Artifact(path, path.relative_to(artifacts_dir).as_posix())
            for path in sorted(artifacts_dir.rglob("*"))
            if path.is_file() and not path.is_symlink()
        ]
    return ImportedRun(
        source=SOURCE,
        key=run_uuid,
        run_id=run_id_for(SOURCE, run_uuid),
        name=str(name) if name else None,
        started=started,
        finished=finished,
        status=outcome,
        error=error,
        config={k: param_value(v) for k, v in sorted(params.items())},
        tags=[f"experiment:{experiment}"]
        + [f"{k}={v}" for k, v in sorted(tags.items()) if not k.startswith("mlflow.")],
        points=points,
        artifacts=[a for a in artifacts if a.path],
    )
