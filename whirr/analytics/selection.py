"""Choosing runs: each by exact id, unique prefix or its job (``1``, ``#1``, ``job-1``),
or all runs filtered by status and tag. The one run resolver is the facade's
(``Whirr.run``), so a run is named the same way here as in ``whirr show``."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from whirr.facade.protocol import Whirr
from whirr.wire import schemas


def resolve_runs(whirr: Whirr, refs: Iterable[str]) -> list[schemas.Run]:
    """Resolve each reference in order; a run named twice appears once."""
    seen: set[str] = set()
    runs: list[schemas.Run] = []
    for ref in refs:
        run = whirr.run(ref)
        if run.id not in seen:
            seen.add(run.id)
            runs.append(run)
    return runs


def select_runs(
    whirr: Whirr,
    refs: Sequence[str] = (),
    status: str | None = None,
    tag: str | None = None,
) -> list[schemas.Run]:
    """The named runs (in the order given) or every run, newest first; then keep those
    with ``status`` and ``tag`` when given."""
    if not refs:
        return whirr.runs(status=status, tag=tag, limit=None)
    runs = resolve_runs(whirr, refs)
    return [
        run
        for run in runs
        if (status is None or run.status == status) and (tag is None or tag in run.tags)
    ]
