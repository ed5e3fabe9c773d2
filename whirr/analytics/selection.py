"""Choosing runs: by exact id or unique prefix, or all runs filtered by status and tag."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from whirr.analytics.errors import AmbiguousRun, RunNotFound
from whirr.projections import RunView
from whirr.store.protocol import ViewReader

#: How many candidates an ambiguity error lists.
_SHOWN = 5


def resolve_run(store: ViewReader, ref: str) -> RunView:
    """The run whose id is ``ref``, or the only run whose id starts with it.

    An exact id always wins, so ``job-1`` names job-1 even when job-10 exists.
    """
    exact = store.run(ref)
    if exact is not None:
        return exact
    matches = store.runs_by_prefix(ref, limit=_SHOWN + 1) if ref else []
    if not matches:
        raise RunNotFound(f"no run matches {ref!r} (see `whirr runs`)")
    if len(matches) > 1:
        shown = ", ".join(run.id for run in matches[:_SHOWN])
        more = ", ..." if len(matches) > _SHOWN else ""
        raise AmbiguousRun(f"run id prefix {ref!r} is ambiguous: it matches {shown}{more}")
    return matches[0]


def resolve_runs(store: ViewReader, refs: Iterable[str]) -> list[RunView]:
    """Resolve each reference in order; a run named twice appears once."""
    seen: set[str] = set()
    runs: list[RunView] = []
    for ref in refs:
        run = resolve_run(store, ref)
        if run.id not in seen:
            seen.add(run.id)
            runs.append(run)
    return runs


def select_runs(
    store: ViewReader,
    refs: Sequence[str] = (),
    status: str | None = None,
    tag: str | None = None,
) -> list[RunView]:
    """The named runs (in the order given) or every run, newest first; then keep those
    with ``status`` and ``tag`` when given."""
    if not refs:
        return store.runs(status=status, tag=tag)
    runs = resolve_runs(store, refs)
    return [
        run
        for run in runs
        if (status is None or run.status == status) and (tag is None or tag in run.tags)
    ]
