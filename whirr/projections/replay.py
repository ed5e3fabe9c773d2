"""What replay does with events it cannot use: the pure decision, for every store.

A stored event that does not decode reaches replay as an ``Unreadable`` stand-in. Replay
skips it (the views are folded from the rest) rather than failing: one bad event must
not stop every command. Whether the user is still to be told about it is decided here
too: it is *outstanding* until an ``EventsVoided`` event names its position (what
``whirr repair`` appends). Telling them (a warning, ``whirr doctor``) happens outside.
"""

from __future__ import annotations

from collections.abc import Iterable

from whirr.events import EventsVoided, Recorded, Unreadable


def replayable(rec: Recorded) -> bool:
    """Whether projections fold ``rec`` (False for a stand-in of an undecodable event)."""
    return not isinstance(rec.event, Unreadable)


def voided_positions(records: Iterable[Recorded]) -> set[int]:
    """Positions some ``EventsVoided`` among ``records`` declares void."""
    found: set[int] = set()
    for rec in records:
        if isinstance(rec.event, EventsVoided):
            found.update(rec.event.positions)
    return found


def outstanding(records: Iterable[Recorded], voided: set[int]) -> list[Recorded]:
    """The undecodable events among ``records`` that no ``EventsVoided`` covers yet."""
    return [r for r in records if isinstance(r.event, Unreadable) and r.position not in voided]
