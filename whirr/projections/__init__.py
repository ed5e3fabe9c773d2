"""Projections: pure folds ``apply(view, event) -> view`` that rebuild queue, run and worker
views from the log. Stores materialise them; nothing here does I/O."""

from __future__ import annotations

from collections.abc import Callable, Hashable, Sequence
from typing import Any

import msgspec

from whirr.events import Event, Recorded
from whirr.projections import jobs, queue_state, runs, workers
from whirr.projections.jobs import JobView
from whirr.projections.queue_state import QueueView
from whirr.projections.replay import replayable
from whirr.projections.runs import RunView
from whirr.projections.workers import WorkerView


class Projection(msgspec.Struct, frozen=True):
    """One projection: its name, the key an event belongs to, and the fold."""

    name: str
    view_type: type
    key: Callable[[Event], Hashable | None]
    apply: Callable[[Any, Recorded], Any]


JOBS = Projection("jobs", JobView, jobs.key, jobs.apply)
RUNS = Projection("runs", RunView, runs.key, runs.apply)
WORKERS = Projection("workers", WorkerView, workers.key, workers.apply)
QUEUE = Projection("queue", QueueView, queue_state.key, queue_state.apply)
PROJECTIONS: tuple[Projection, ...] = (JOBS, RUNS, WORKERS, QUEUE)


def folding(rec: Recorded) -> tuple[Projection, ...]:
    """The projections that fold ``rec``: all of them, or for an event that did not decode
    (``projections.replay``) only the queue's, which keeps the job ids it used."""
    return PROJECTIONS if replayable(rec) else (QUEUE,)


def fold(records: list[Recorded]) -> dict[str, dict[Any, Any]]:
    """Replay ``records`` into fresh views: ``{projection name: {key: view}}``; events that
    did not decode are skipped (``projections.replay``) but for the job ids they used."""
    views: dict[str, dict[Any, Any]] = {p.name: {} for p in PROJECTIONS}
    for rec in records:
        fold_one(views, rec)
    return views


def fold_one(views: dict[str, dict[Any, Any]], rec: Recorded) -> None:
    """Fold one record into ``views`` (``{projection name: {key: view}}``), in place."""
    for projection in folding(rec):
        k = projection.key(rec.event)
        if k is None:
            continue
        table = views[projection.name]
        new = projection.apply(table.get(k), rec)
        if new is not None:
            table[k] = new


def fold_touched(
    recorded: Sequence[Recorded], current: Callable[[str, Any], Any]
) -> dict[tuple[str, Any], Any]:
    """Fold ``recorded`` into the views they touch, each read once with
    ``current(projection name, key)`` (None: no view yet); returns the views that changed,
    by ``(projection name, key)``. How a store materialises a transaction's events."""
    touched: dict[tuple[str, Any], Any] = {}
    changed: dict[tuple[str, Any], Any] = {}
    for rec in recorded:
        for projection in folding(rec):
            k = projection.key(rec.event)
            if k is None:
                continue
            slot = (projection.name, k)
            view = touched[slot] if slot in touched else current(projection.name, k)
            new = projection.apply(view, rec)
            if new is not None:
                touched[slot] = changed[slot] = new
    return changed


__all__ = [
    "JOBS",
    "PROJECTIONS",
    "QUEUE",
    "RUNS",
    "WORKERS",
    "JobView",
    "Projection",
    "QueueView",
    "RunView",
    "WorkerView",
    "fold",
    "fold_one",
    "fold_touched",
    "folding",
]
