"""Queuing a job that belongs to a study, with its membership recorded atomically.

A sweep or an ablation records each job it queues with an event of its own
(``sweep.job_added``, ``ablation.job_added``). That event must be appended in the same
transaction as the job's ``job.submitted``: otherwise a crash between the two leaves a
job that runs but belongs to nobody, and a resumed study would queue it twice. Rather
than duplicate ``Jobs.submit``, we hand it a store whose transactions add the membership
event derived from each ``JobSubmitted`` they are about to append.
"""

from __future__ import annotations

import inspect
import re
from collections.abc import Callable, Sequence
from typing import Any, cast

import msgspec

from whirr.events import JobSubmitted, Pending
from whirr.projections import JobView
from whirr.services import Jobs
from whirr.services.errors import InvalidRequest
from whirr.store import EventStore, ViewReader
from whirr.wire.studies import SubmitOptions

#: ``Jobs.submit`` arguments a study sets itself, so they cannot be passed through.
_RESERVED = frozenset(
    {"argv", "workdir", "name", "config", "tags", "parent_job_id", "first_attempt", "check", "self"}
)

Link = Callable[[JobSubmitted], Sequence[Pending]]


def submit_option_names() -> list[str]:
    """The ``Jobs.submit`` keyword arguments a study passes through (``priority``, ...).

    Read from the signature, so options added to ``Jobs.submit`` work here unchanged."""
    params = inspect.signature(Jobs.submit).parameters
    return sorted(
        name
        for name, p in params.items()
        if p.kind is inspect.Parameter.KEYWORD_ONLY and name not in _RESERVED
    )


def check_submit_options(options: dict[str, Any]) -> dict[str, Any]:
    """``options`` if every key is a pass-through ``Jobs.submit`` argument and every value
    has its type and bounds (as ``POST /jobs`` takes them); else ``InvalidRequest`` naming
    the option. Checked before the study is recorded: a value the store would refuse only
    when the first job is appended would leave a study with no jobs behind."""
    allowed = submit_option_names()
    for key in options:
        if key not in allowed:
            raise InvalidRequest(f"unknown submit option {key!r} (available: {', '.join(allowed)})")
    problem = submit_option_type_error(options)
    if problem is not None:
        raise InvalidRequest(problem)
    return options


def submit_option_type_error(options: dict[str, Any]) -> str | None:
    """What is wrong with the values of ``options`` (the option named), or None. Keys that
    are not submit options are left to ``check_submit_options``'s name check."""
    known = {k: v for k, v in options.items() if k in SubmitOptions.__struct_fields__}
    try:
        msgspec.convert(known, SubmitOptions)
    except msgspec.ValidationError as exc:
        why, _, where = str(exc).partition(" - at `$.")
        name = re.split(r"[.\[`]", where, maxsplit=1)[0]
        return f"invalid submit option {name!r}: {why}" if name else f"invalid submit option: {why}"
    return None


class _LinkingStore:
    """A store whose transactions also append ``link(event)`` for every ``JobSubmitted``.

    It answers only the records ``decide`` asked for, so ``Jobs`` sees what it expects."""

    def __init__(self, store: EventStore, link: Link) -> None:
        self._store = store
        self._link = link

    def transact(self, decide: Callable[[ViewReader], Sequence[Pending]]) -> list[Any]:
        asked: list[int] = []

        def linked(reader: ViewReader) -> list[Pending]:
            pending = list(decide(reader))
            asked.append(len(pending))
            extra = [
                p2
                for p in pending
                if isinstance(p.event, JobSubmitted)
                for p2 in self._link(p.event)
            ]
            return pending + extra

        recorded = self._store.transact(linked)
        return recorded[: asked[-1]]

    def __getattr__(self, name: str) -> Any:
        return getattr(self._store, name)


def submit_linked(
    store: EventStore, link: Link, argv: Sequence[str], workdir: str, **options: Any
) -> JobView:
    """``Jobs(store).submit(argv, workdir, **options)``, appending ``link(submitted)`` in
    the same transaction."""
    jobs = Jobs(cast(EventStore, _LinkingStore(store, link)))
    return jobs.submit(argv, workdir, **options)
