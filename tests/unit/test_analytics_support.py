"""Builders for analytics tests: real projects on disk with runs of known metrics.

Runs are recorded through the store (RunStarted, RunSummaryUpdated, RunFinished, at chosen
times) and their ``metrics.jsonl``/``system.jsonl`` written here in the SPEC format, so the
tests depend on the files' contract, not on the tracking library's internals.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import msgspec

from whirr.analytics.compare import Comparison, compare_runs
from whirr.analytics.query import Result, run_sql
from whirr.analytics.session import Session
from whirr.events import Pending, RunFinished, RunStarted, RunSummaryUpdated, run_stream
from whirr.facade import open_project
from whirr.project import Project, init_project
from whirr.store.sqlite import SQLiteStore

T0 = datetime(2024, 5, 1, 12, 0, 0, tzinfo=UTC)
_encode = msgspec.json.Encoder().encode


def iso(at: datetime) -> str:
    """A timestamp as whirr writes it in JSONL files."""
    return at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def metric_lines(rows: Iterable[Mapping[str, Any]], start: datetime = T0) -> bytes:
    """JSONL bytes for ``rows`` (each ``{"step": ..., key: value}``), with ``_idx`` and
    ``_timestamp`` first, one second apart."""
    out = bytearray()
    for idx, row in enumerate(rows):
        line = {"_idx": idx, "_timestamp": iso(start + timedelta(seconds=idx)), **row}
        out += _encode(line) + b"\n"
    return bytes(out)


class Builder:
    """Adds runs to a project, each started ``minutes`` after ``T0`` so order is known."""

    def __init__(self, project: Project) -> None:
        self.project = project
        self.count = 0

    def _append(self, at: datetime, *events: Any) -> None:
        store = SQLiteStore(str(self.project.db_path), clock=lambda: at)
        try:
            store.append([Pending(run_stream(e.run_id), e) for e in events])
        finally:
            store.close()

    def run(
        self,
        run_id: str,
        *,
        name: str | None = None,
        config: dict[str, Any] | None = None,
        tags: list[str] | None = None,
        summary: dict[str, Any] | None = None,
        metrics: Iterable[Mapping[str, Any]] | None = None,
        system: Iterable[Mapping[str, Any]] | None = None,
        status: str = "completed",
        duration: float = 60.0,
        job_id: int | None = None,
        tail: bytes = b"",
    ) -> Path:
        """Record a run and write its files; ``tail`` is appended raw (a torn line)."""
        started = T0 + timedelta(minutes=self.count)
        self.count += 1
        run_dir = self.project.run_dir(run_id)
        run_dir.mkdir(parents=True, exist_ok=True)
        self._append(
            started,
            RunStarted(
                run_id=run_id,
                run_dir=str(run_dir),
                name=name,
                job_id=job_id,
                config=config or {},
                tags=tags or [],
                hostname="testhost",
            ),
        )
        if summary:
            self._append(started, RunSummaryUpdated(run_id=run_id, summary=summary))
        if status != "running":
            finished = started + timedelta(seconds=duration)
            self._append(finished, RunFinished(run_id=run_id, status=status))  # type: ignore[arg-type]
        if metrics is not None or tail:
            (run_dir / "metrics.jsonl").write_bytes(metric_lines(metrics or [], started) + tail)
        if system is not None:
            lines = b"".join(
                _encode({"_timestamp": iso(started + timedelta(seconds=i)), **row}) + b"\n"
                for i, row in enumerate(system)
            )
            (run_dir / "system.jsonl").write_bytes(lines)
        return run_dir


def new_project(path: Path) -> tuple[Project, Builder]:
    """A fresh project at ``path`` and a builder for it."""
    project, _ = init_project(path)
    return project, Builder(project)


def sweep(builder: Builder) -> None:
    """The standard fixture: three finished runs of a small sweep, one of them failed, with
    different metric keys, one running run, one empty run and one unicode-named run with a
    torn last line.

    ===========  ======  =====  ===========  ==========================================
    run          lr      bs     best_loss    metrics (step: loss, acc)
    ===========  ======  =====  ===========  ==========================================
    job-1        0.1     32     0.5          0: 1.0/0.1  1: 0.75/0.25  2: 0.5/0.5
    job-2        0.01    32     0.25         0: 0.9/0.2  1: 0.25/0.75  2: 0.375/0.625
    job-3        0.001   64     -            0: 2.0  1: 1.5 (+ val_loss 1.25 at step 1)
    local-run    0.05    -      -            running: 0: 0.8  1: 0.6
    empty        -       -      -            no metrics file
    ünï-run      0.2     16     0.125        0: 0.5/0.9 then a torn line
    ===========  ======  =====  ===========  ==========================================
    """
    builder.run(
        "job-1",
        name="lr-0.1",
        config={"lr": 0.1, "bs": 32, "opt": "sgd"},
        tags=["sweep"],
        summary={"best_loss": 0.5},
        duration=90.5,
        job_id=1,
        metrics=[
            {"step": 0, "loss": 1.0, "acc": 0.1},
            {"step": 1, "loss": 0.75, "acc": 0.25},
            {"step": 2, "loss": 0.5, "acc": 0.5},
        ],
        system=[{"cpu_percent": 10.0, "memory_used_gb": 1.5}],
    )
    builder.run(
        "job-2",
        name="lr-0.01",
        config={"lr": 0.01, "bs": 32, "opt": "sgd"},
        tags=["sweep"],
        summary={"best_loss": 0.25},
        duration=120.25,
        job_id=2,
        metrics=[
            {"step": 0, "loss": 0.9, "acc": 0.2},
            {"step": 1, "loss": 0.25, "acc": 0.75},
            {"step": 2, "loss": 0.375, "acc": 0.625},
        ],
    )
    builder.run(
        "job-3",
        name="lr-0.001",
        config={"lr": 0.001, "bs": 64, "opt": "adam"},
        tags=["sweep"],
        status="failed",
        duration=30.0,
        job_id=3,
        metrics=[{"step": 0, "loss": 2.0}, {"step": 1, "loss": 1.5, "val_loss": 1.25}],
    )
    builder.run(
        "local-run",
        name="quick",
        config={"lr": 0.05},
        status="running",
        metrics=[{"step": 0, "loss": 0.8}, {"step": 1, "loss": 0.6}],
    )
    builder.run("empty", name="nothing", status="completed", duration=1.0)
    builder.run(
        "ünï-run",
        name="ünïcødé ✓",
        config={"lr": 0.2, "bs": 16, "opt": "sgd"},
        tags=["sweep", "ü"],
        summary={"best_loss": 0.125},
        duration=10.0,
        metrics=[{"step": 0, "loss": 0.5, "acc": 0.9}],
        tail=b'{"_idx":1,"_timestamp":"2024-05-01T12:05:01.0000',
    )


def invoke(*args: str) -> tuple[int, str, str]:
    """Run ``whirr ARGS`` in this process: (exit code, stdout, stderr)."""
    from click.testing import CliRunner

    from whirr.cli.main import cli

    result = CliRunner().invoke(cli, list(args))
    return result.exit_code, result.stdout, result.stderr


@contextmanager
def project_session(project: Project) -> Iterator[Session]:
    """An analytics session over ``project`` (its ``whirr`` the project's facade)."""
    whirr = open_project(project.root)
    try:
        with Session(whirr) as session:
            yield session
    finally:
        whirr.close()


def compare(project: Project, refs: list[str], *args: Any, **kwargs: Any) -> Comparison:
    """``compare_runs`` over ``project``."""
    whirr = open_project(project.root)
    try:
        return compare_runs(whirr, refs, *args, **kwargs)
    finally:
        whirr.close()


def sql(project: Project, query: str) -> Result:
    """``run_sql`` over ``project``."""
    whirr = open_project(project.root)
    try:
        return run_sql(whirr, query)
    finally:
        whirr.close()
