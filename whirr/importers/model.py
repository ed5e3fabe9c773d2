"""What a reader hands the writer: one run of another tool, in whirr's terms.

Readers (``mlflow``, ``tensorboard``, ``wandb``) only read their source and build these;
``whirr.importers.writer`` turns them into run files and events. So a reader can be
tested on its own, and the writing is the same for every source."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

#: How an imported run ended (a subset of ``whirr.events.RunOutcome``).
Outcome = Literal["completed", "failed", "killed", "crashed"]


class SourceError(Exception):
    """The source cannot be read (missing, not of the named kind, unreadable)."""


@dataclass(frozen=True, slots=True)
class Point:
    """One logged value: ``key`` at ``step`` (None: no step), ``time`` in epoch seconds."""

    key: str
    value: float | int | bool | str | None
    step: int | None
    time: float


@dataclass(frozen=True, slots=True)
class Artifact:
    """A file to copy: ``source`` on disk, ``path`` relative to the run's ``artifacts/``."""

    source: Path
    path: str


@dataclass(slots=True)
class ImportedRun:
    """One run read from a source.

    ``source`` is the tool (``mlflow``), ``key`` the run's id there (stable: importing the
    same run again finds it by this), ``started``/``finished`` epoch seconds."""

    source: str
    key: str
    run_id: str
    name: str | None
    started: float
    finished: float | None
    status: Outcome
    error: str | None = None
    config: dict[str, Any] = field(default_factory=dict)
    summary: dict[str, Any] = field(default_factory=dict)
    #: The source's own tags and labels, as ``k=v`` or ``k`` strings.
    tags: list[str] = field(default_factory=list)
    points: list[Point] = field(default_factory=list)
    artifacts: list[Artifact] = field(default_factory=list)
