"""Events: the facts whirr records. Pure data, no I/O."""

from whirr.events.ablations import (
    AblationBaselineSet,
    AblationCreated,
    AblationDeltaAdded,
    AblationJobAdded,
    AblationLaunched,
)
from whirr.events.base import Event, Pending, Recorded, job_stream, run_stream, worker_stream
from whirr.events.codec import EVENT_TYPES, TAGS, AnyEvent, decode, decode_many, encode, tag_of
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
    Outcome,
)
from whirr.events.queue import QUEUE_STREAM, QueuePaused, QueueResumed
from whirr.events.runs import (
    RunArtifactSaved,
    RunFinished,
    RunOutcome,
    RunStarted,
    RunSummaryUpdated,
)
from whirr.events.sweeps import Goal, SweepCreated, SweepJobAdded
from whirr.events.workers import (
    WorkerDrainRequested,
    WorkerRegistered,
    WorkerSeen,
    WorkerStopped,
)

__all__ = [
    "EVENT_TYPES",
    "QUEUE_STREAM",
    "TAGS",
    "AblationBaselineSet",
    "AblationCreated",
    "AblationDeltaAdded",
    "AblationJobAdded",
    "AblationLaunched",
    "AnyEvent",
    "Event",
    "Goal",
    "JobCancelRequested",
    "JobClaimed",
    "JobDependencyEnded",
    "JobDependentAdded",
    "JobFinished",
    "JobHeartbeat",
    "JobPriorityChanged",
    "JobRequeued",
    "JobRetryScheduled",
    "JobStarted",
    "JobSubmitted",
    "Outcome",
    "Pending",
    "QueuePaused",
    "QueueResumed",
    "Recorded",
    "RunArtifactSaved",
    "RunFinished",
    "RunOutcome",
    "RunStarted",
    "RunSummaryUpdated",
    "SweepCreated",
    "SweepJobAdded",
    "WorkerDrainRequested",
    "WorkerRegistered",
    "WorkerSeen",
    "WorkerStopped",
    "decode",
    "decode_many",
    "encode",
    "job_stream",
    "run_stream",
    "tag_of",
    "worker_stream",
]
