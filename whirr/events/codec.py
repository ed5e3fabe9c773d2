"""The one codec for events: encode to JSON bytes, decode back to the right Struct.

Two guards keep the log readable (docs/architecture.md, "What the log accepts"):
``encode_valid`` refuses an event that would not decode as its own type (so nothing
invalid is appended), and ``decode_lenient`` turns stored data that does not decode into
an ``Unreadable`` stand-in instead of failing the whole read (so replay never bricks).
"""

from __future__ import annotations

import math
from typing import Any, Union

import msgspec

from whirr.decoding import LazyDecoder
from whirr.events.ablations import (
    AblationBaselineSet,
    AblationCreated,
    AblationDeltaAdded,
    AblationJobAdded,
    AblationLaunched,
)
from whirr.events.base import Event
from whirr.events.holds import JobHeld, JobReleased
from whirr.events.jobs import (
    JobCancelRequested,
    JobClaimed,
    JobDependencyEnded,
    JobDependentAdded,
    JobFinished,
    JobHeartbeat,
    JobPriorityChanged,
    JobRequeued,
    JobRetryScheduled,
    JobStarted,
    JobSubmitted,
)
from whirr.events.log import UNREADABLE_DATA_CHARS, EventsVoided, Unreadable
from whirr.events.manage import (
    JobCleaned,
    RunArchived,
    RunConfigUpdated,
    RunDeleted,
    RunNoteSet,
    RunRenamed,
    RunTagsAdded,
    RunTagsRemoved,
    RunUnarchived,
)
from whirr.events.project import ProjectCreated, ProjectRestored
from whirr.events.queue import QueuePaused, QueueResumed
from whirr.events.runs import (
    RunArtifactSaved,
    RunFinished,
    RunSizeWarning,
    RunStarted,
    RunSummaryUpdated,
)
from whirr.events.sweeps import (
    SweepCreated,
    SweepFailFastCleared,
    SweepJobAdded,
    SweepPaused,
    SweepResumed,
)
from whirr.events.workers import (
    WorkerDrainRequested,
    WorkerRegistered,
    WorkerSeen,
    WorkerStopped,
)

#: Every event type, spelled out once. Add new ones here (and a golden fixture).
EVENT_TYPES: tuple[type[Event], ...] = (
    JobSubmitted,
    JobClaimed,
    JobStarted,
    JobHeartbeat,
    JobCancelRequested,
    JobFinished,
    JobRequeued,
    RunStarted,
    RunSummaryUpdated,
    RunArtifactSaved,
    RunFinished,
    WorkerRegistered,
    WorkerSeen,
    WorkerStopped,
    SweepCreated,
    SweepJobAdded,
    AblationCreated,
    AblationBaselineSet,
    AblationDeltaAdded,
    AblationLaunched,
    AblationJobAdded,
    JobRetryScheduled,
    JobPriorityChanged,
    JobDependencyEnded,
    JobDependentAdded,
    WorkerDrainRequested,
    QueuePaused,
    QueueResumed,
    EventsVoided,
    ProjectCreated,
    ProjectRestored,
    RunRenamed,
    RunTagsAdded,
    RunTagsRemoved,
    RunNoteSet,
    RunArchived,
    RunUnarchived,
    RunDeleted,
    RunConfigUpdated,
    JobCleaned,
    JobHeld,
    JobReleased,
    SweepPaused,
    SweepFailFastCleared,
    SweepResumed,
    RunSizeWarning,
)

AnyEvent = Union[EVENT_TYPES]  # type: ignore[valid-type]  # noqa: UP007

_encoder = msgspec.json.Encoder()
_decoder: LazyDecoder[Event] = LazyDecoder(AnyEvent)

#: Tag of each event class, e.g. ``JobSubmitted -> "job.submitted"``.
TAGS: dict[type[Event], str] = {cls: cls.__struct_config__.tag for cls in EVENT_TYPES}  # type: ignore[misc]


class InvalidEventError(ValueError):
    """An event that does not decode as its own type: it is never appended."""


#: Per event type, a decoder of exactly that type (built on first use).
_own: dict[type[Event], msgspec.json.Decoder[Any]] = {}
#: Per event type, its float fields: NaN encodes as ``null``, which an optional float
#: would decode as None, so a non-finite value is refused before it can be lost that way.
_floats: dict[type[Event], tuple[str, ...]] = {}
_APPENDABLE = frozenset(EVENT_TYPES)


def tag_of(event: Event) -> str:
    """The stable type tag of ``event`` (``log.unreadable`` for a stand-in)."""
    return TAGS.get(type(event)) or type(event).__struct_config__.tag  # type: ignore[return-value]


def encode(event: Event) -> bytes:
    """Encode one event (its ``type`` tag included) as compact JSON."""
    return _encoder.encode(event)


def encode_valid(event: Event) -> bytes:
    """Encode ``event`` for appending, after checking that the encoding decodes strictly
    as the event's own type (every field's type and bounds); raises ``InvalidEventError``
    naming the event type and the field."""
    cls = type(event)
    if cls not in _APPENDABLE:
        raise InvalidEventError(f"{cls.__name__} is not an event the log records")
    tag = TAGS[cls]
    try:
        data = _encoder.encode(event)
    except (TypeError, ValueError, msgspec.EncodeError) as exc:
        raise InvalidEventError(f"invalid {tag} event: {exc}") from None
    decoder = _own.get(cls)
    if decoder is None:
        decoder = _own[cls] = msgspec.json.Decoder(cls)
        _floats[cls] = tuple(f.name for f in msgspec.structs.fields(cls) if "float" in str(f.type))
    try:
        decoder.decode(data)
    except msgspec.ValidationError as exc:
        raise InvalidEventError(f"invalid {tag} event: {exc}") from None
    for name in _floats[cls]:
        value = getattr(event, name)
        if isinstance(value, float) and not math.isfinite(value):
            raise InvalidEventError(f"invalid {tag} event: `{name}` is {value}, not a number")
    return data


def decode_many(datas: list[bytes]) -> list[Event]:
    """Decode many encoded events at once (one call into msgspec instead of one each)."""
    return _decoder.many(datas)


def decode(data: bytes | str) -> Event:
    """Decode one event; raises ``msgspec.ValidationError`` on unknown tags or bad fields."""
    return _decoder.one(data)


def decode_lenient(datas: list[bytes | str]) -> list[Event]:
    """Decode stored events, each that does not decode becoming an ``Unreadable``
    stand-in: one bad event must not make the rest of the log unreadable. All at once
    while every one decodes (the common case), one by one otherwise."""
    try:
        try:
            events = _decoder.many(datas)  # type: ignore[arg-type]  # bytes: the usual case
        except TypeError:  # some stored as text: encoded first
            events = _decoder.many([d.encode() if isinstance(d, str) else d for d in datas])
        # Joined, stored data such as ``{...},{...}`` reads as two events: one each, then.
        if len(events) == len(datas):
            return events
    except (msgspec.ValidationError, msgspec.DecodeError):
        pass
    out: list[Event] = []
    for data in datas:
        try:
            out.append(_decoder.one(data))
        except (msgspec.ValidationError, msgspec.DecodeError) as exc:
            out.append(unreadable(data, str(exc)))
    return out


def unreadable(data: bytes | str, error: str) -> Unreadable:
    """The stand-in for stored ``data`` that does not decode (``error`` says why)."""
    text = data.decode("utf-8", "replace") if isinstance(data, bytes) else data
    return Unreadable(
        event_type=_claimed_type(text), error=error, data=text[:UNREADABLE_DATA_CHARS]
    )


def _claimed_type(text: str) -> str:
    """The ``type`` the stored JSON names, or ``"?"``."""
    try:
        found = msgspec.json.decode(text)
    except msgspec.DecodeError:
        return "?"
    kind = found.get("type") if isinstance(found, dict) else None
    return kind if isinstance(kind, str) else "?"
