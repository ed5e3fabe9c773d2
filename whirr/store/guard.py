"""The one guard every backend (memory, SQLite, PostgreSQL) puts around its log.

Writing: ``encode_for_append`` refuses an event that would not decode as its own type
(wrong field type, a number out of bounds, NaN) with ``InvalidEvent``, so nothing
invalid is appended, whatever entry point built the event.

Reading: ``decode_stored`` turns stored data that does not decode into an ``Unreadable``
stand-in (replay skips it: ``projections.replay``), and ``notice`` tells whoever listens
about the ones not yet voided: by default ONE warning on stderr per process, naming the
positions and the way out (``whirr doctor``, ``whirr repair``).
"""

from __future__ import annotations

import operator
import sys
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING

from whirr.events import (
    LOG_STREAM,
    Event,
    InvalidEventError,
    Recorded,
    Unreadable,
    decode_lenient,
    encode_valid,
)
from whirr.projections.replay import outstanding, voided_positions
from whirr.store.protocol import InvalidEvent

if TYPE_CHECKING:
    from whirr.store.protocol import EventStore

_event_of = operator.attrgetter("event")
#: Called with the undecodable, not yet voided events a read came across.
Listener = Callable[[list[Recorded]], None]


def encode_for_append(event: Event) -> bytes:
    """``event`` encoded for the log; ``InvalidEvent`` (a ``StoreError``, so the CLI
    prints one ``Error:`` line) when it would not decode as its own type."""
    try:
        return encode_valid(event)
    except InvalidEventError as exc:
        raise InvalidEvent(f"refused to record it: {exc}") from None


def decode_stored(datas: Sequence[bytes | str]) -> list[Event]:
    """Stored events decoded, an ``Unreadable`` stand-in for each that does not decode."""
    return decode_lenient(list(datas))


def typed(events: list[Event], types: Sequence[str] | None) -> list[bool]:
    """Which of ``events`` a read filtered by ``types`` keeps: a stand-in is of no type
    asked for (it did not decode as one), so a filtered read leaves it out."""
    if types is None:
        return [True] * len(events)
    return [not isinstance(e, Unreadable) for e in events]


class _Warner:
    """The default listener: one line on stderr, the first time a process meets
    undecodable events (later reads of the same or other ones stay quiet)."""

    def __init__(self) -> None:
        self._told = False
        self._lock = threading.Lock()

    def __call__(self, found: list[Recorded]) -> None:
        with self._lock:
            if self._told or not found:
                return
            self._told = True
        print(warning_text(found), file=sys.stderr, flush=True)


def warning_text(found: list[Recorded]) -> str:
    """The warning about undecodable events ``found`` (positions and the way out)."""
    first = found[0]
    event = first.event
    assert isinstance(event, Unreadable)
    where = ", ".join(str(r.position) for r in found[:10]) + (" ..." if len(found) > 10 else "")
    return (
        f"Warning: the event log holds {len(found)} event(s) that do not decode, at "
        f"position(s) {where} (position {first.position}: {event.event_type}: "
        f"{event.error}); they are skipped. `whirr doctor` lists them, `whirr repair` "
        "voids them."
    )


_listeners: list[Listener] = [_Warner()]
_noticing = threading.local()


def listen(listener: Listener | None) -> None:
    """Send what ``notice`` finds to ``listener`` instead (None: to nobody)."""
    _listeners[:] = [listener] if listener is not None else []


@contextmanager
def quiet() -> Iterator[None]:
    """Tell nobody meanwhile: for callers that scan for undecodable events on purpose
    and report what they find themselves (``whirr doctor``, ``whirr repair``)."""
    saved = list(_listeners)
    _listeners.clear()
    try:
        yield
    finally:
        _listeners[:] = saved


def notice(store: EventStore, records: Sequence[Recorded]) -> None:
    """Tell the listeners about the undecodable events among ``records`` that no
    ``EventsVoided`` covers (looked up only when there are such events: rare)."""
    # The common case (nothing undecodable) decided in C: a replay reads millions.
    if Unreadable not in map(type, map(_event_of, records)):
        return
    found = [r for r in records if isinstance(r.event, Unreadable)]
    if not _listeners or getattr(_noticing, "busy", False):
        return
    _noticing.busy = True  # the look-up below reads the log too
    try:
        voided = voided_positions(store.read(stream=LOG_STREAM, types=["log.voided"]))
    finally:
        _noticing.busy = False
    fresh = outstanding(found, voided)
    if fresh:
        for listener in list(_listeners):
            listener(fresh)
