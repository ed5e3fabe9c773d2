"""The one codec for events: encode to JSON bytes, decode back to the right Struct."""

from __future__ import annotations

from typing import Union

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
from whirr.events.queue import QueuePaused, QueueResumed
from whirr.events.runs import RunArtifactSaved, RunFinished, RunStarted, RunSummaryUpdated
from whirr.events.sweeps import SweepCreated, SweepJobAdded
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
)

AnyEvent = Union[EVENT_TYPES]  # type: ignore[valid-type]  # noqa: UP007

_encoder = msgspec.json.Encoder()
_decoder: LazyDecoder[Event] = LazyDecoder(AnyEvent)

#: Tag of each event class, e.g. ``JobSubmitted -> "job.submitted"``.
TAGS: dict[type[Event], str] = {cls: cls.__struct_config__.tag for cls in EVENT_TYPES}  # type: ignore[misc]


def tag_of(event: Event) -> str:
    """The stable type tag of ``event``."""
    return TAGS[type(event)]


def encode(event: Event) -> bytes:
    """Encode one event (its ``type`` tag included) as compact JSON."""
    return _encoder.encode(event)


def decode_many(datas: list[bytes]) -> list[Event]:
    """Decode many encoded events at once (one call into msgspec instead of one each)."""
    return _decoder.many(datas)


def decode(data: bytes | str) -> Event:
    """Decode one event; raises ``msgspec.ValidationError`` on unknown tags or bad fields."""
    return _decoder.one(data)
