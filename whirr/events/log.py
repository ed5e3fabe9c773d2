"""Events about the log itself: positions declared void, and the stand-in that reading
yields where a stored event does not decode."""

from whirr.events.base import Event
from whirr.events.bounds import Position

#: The stream events about the log itself are recorded in.
LOG_STREAM = "log"


class EventsVoided(Event, frozen=True, tag="log.voided"):
    """The events at ``positions`` do not decode and are void: replay skips them without
    a warning from now on. History is never rewritten; ``whirr repair`` appends this."""

    positions: list[Position]
    reason: str = ""


class Unreadable(Event, frozen=True, tag="log.unreadable"):
    """Not an event anyone records: what reading the log yields at a position whose
    stored data does not decode as any event (an older bug, a hand edit, a newer whirr).

    Never appended (the codec refuses it); projections skip it (``projections.replay``)."""

    #: The type the stored data claims (``"?"`` when it names none).
    event_type: str
    #: Why it does not decode, as msgspec says it (the field is named there).
    error: str
    #: The stored data as text (cut at ``UNREADABLE_DATA_CHARS``).
    data: str


#: How much of an unreadable event's data is kept in its stand-in.
UNREADABLE_DATA_CHARS = 2_000
