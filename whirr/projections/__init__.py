"""Projections: pure folds ``apply(view, event) -> view`` that rebuild queue, run and worker
views from the log. Stores materialise them; nothing here does I/O."""

from __future__ import annotations

from collections.abc import Callable, Hashable, Mapping, Sequence
from typing import Any

import msgspec

from whirr.events import Event, Recorded
from whirr.projections import jobs, queue_state, runs, workers
from whirr.projections.jobs import JobView
from whirr.projections.queue_state import QueueView
from whirr.projections.runs import RunView
from whirr.projections.workers import WorkerView


class Projection(msgspec.Struct, frozen=True):
    """One projection: its name, the key an event belongs to (None: not its event) and
    the fold, and the same by event type for a fold's hot loop: ``steps``, the fold of
    each type it handles (it is handed no other), and ``key_of``, the key of an event of
    such a type."""

    name: str
    view_type: type
    key: Callable[[Event], Hashable | None]
    apply: Callable[[Any, Recorded], Any]
    steps: Mapping[type[Event], Callable[[Any, Recorded], Any]]
    key_of: Callable[[Event], Hashable | None]

    @property
    def handles(self) -> frozenset[type[Event]]:
        """The event types this projection folds."""
        return frozenset(self.steps)


JOBS = Projection("jobs", JobView, jobs.key, jobs.apply, jobs.STEPS, jobs.key_of)
RUNS = Projection("runs", RunView, runs.key, runs.apply, runs.STEPS, runs.key_of)
WORKERS = Projection(
    "workers", WorkerView, workers.key, workers.apply, workers.STEPS, workers.key_of
)
QUEUE = Projection(
    "queue", QueueView, queue_state.key, queue_state.apply, queue_state.STEPS, queue_state.key_of
)
PROJECTIONS: tuple[Projection, ...] = (JOBS, RUNS, WORKERS, QUEUE)

#: What a fold does with one event type: (projection name, key, step) of each projection
#: that folds it, in ``PROJECTIONS`` order. Looked up once per event by its type, so an
#: event costs only the projections it concerns (most touch one or two of the four), and
#: each of them one call into Python: its step (the key is mostly read in C).
Route = tuple[tuple[str, Callable[[Event], Hashable | None], Callable[[Any, Recorded], Any]], ...]
_routes: dict[type, Route] = {}
#: Not a view: a slot not looked up yet (a view may be None).
_ABSENT: Any = object()


def _route(kind: type) -> Route:
    found = _routes.get(kind)
    if found is None:
        found = tuple((p.name, p.key_of, p.steps[kind]) for p in PROJECTIONS if kind in p.steps)
        _routes[kind] = found
    return found


def folding(rec: Recorded) -> tuple[Projection, ...]:
    """The projections that fold ``rec``: those that handle its type. An event that did
    not decode (``projections.replay``) is handled by the queue's only, which keeps the
    job ids it used."""
    return tuple(p for p in PROJECTIONS if type(rec.event) in p.steps)


def fold(records: list[Recorded]) -> dict[str, dict[Any, Any]]:
    """Replay ``records`` into fresh views: ``{projection name: {key: view}}``; events that
    did not decode are skipped (``projections.replay``) but for the job ids they used."""
    views: dict[str, dict[Any, Any]] = {p.name: {} for p in PROJECTIONS}
    for rec in records:
        fold_one(views, rec)
    return views


def fold_one(views: dict[str, dict[Any, Any]], rec: Recorded) -> None:
    """Fold one record into ``views`` (``{projection name: {key: view}}``), in place."""
    kind = type(rec.event)
    route = _routes.get(kind)
    if route is None:
        route = _route(kind)
    for name, key, step in route:
        k = key(rec.event)
        if k is None:
            continue
        table = views[name]
        new = step(table.get(k), rec)
        if new is not None:
            table[k] = new


def fold_touched(
    recorded: Sequence[Recorded], current: Callable[[str, Any], Any]
) -> dict[tuple[str, Any], Any]:
    """Fold ``recorded`` into the views they touch, each read once with
    ``current(projection name, key)`` (None: no view yet); returns the views that changed,
    by ``(projection name, key)``. How a store materialises a transaction's events, and
    how a replay folds a batch (the hot loop of ``rebuild``: kept flat on purpose)."""
    touched: dict[tuple[str, Any], Any] = {}
    changed: dict[tuple[str, Any], Any] = {}
    routes = _routes
    for rec in recorded:
        event = rec.event
        kind = type(event)
        route = routes.get(kind)
        if route is None:
            route = _route(kind)
        for name, key, step in route:
            k = key(event)
            if k is None:
                continue
            slot = (name, k)
            view = touched.get(slot, _ABSENT)
            if view is _ABSENT:
                view = current(name, k)
            new = step(view, rec)
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
