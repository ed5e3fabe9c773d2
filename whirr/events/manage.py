"""Events of run and job management: what people decide about runs after they ran
(rename, tags, notes, archive, delete, config recorded after start) and ``whirr clean``
dropping ended jobs from the queue's views. Each is a fact in the log, so ``rebuild``
gives the same views; nothing here rewrites an earlier event."""

from __future__ import annotations

from typing import Annotated, Any

from msgspec import Meta

from whirr.events.base import Event
from whirr.events.bounds import JobId

#: A run's name as people give it (``whirr runs rename``).
RunName = Annotated[str, Meta(min_length=1, max_length=200)]
#: One tag: short, and never empty.
Tag = Annotated[str, Meta(min_length=1, max_length=100)]
#: Tags one event adds or removes.
Tags = Annotated[list[Tag], Meta(min_length=1, max_length=100)]
#: A run's note (markdown or plain text): at most 64 KiB of characters.
Note = Annotated[str, Meta(max_length=65_536)]


class RunRenamed(Event, frozen=True, tag="run.renamed"):
    """Somebody gave the run a new name."""

    run_id: str
    name: RunName


class RunTagsAdded(Event, frozen=True, tag="run.tags_added"):
    """Tags were added to the run (ones it already has are kept once)."""

    run_id: str
    tags: Tags


class RunTagsRemoved(Event, frozen=True, tag="run.tags_removed"):
    """Tags were removed from the run (ones it does not have are ignored)."""

    run_id: str
    tags: Tags


class RunNoteSet(Event, frozen=True, tag="run.note_set"):
    """The run's note was replaced by ``text`` or, with ``append``, had it added as a new
    paragraph."""

    run_id: str
    text: Note
    append: bool = False


class RunArchived(Event, frozen=True, tag="run.archived"):
    """The run is hidden from default listings (kept, with its files)."""

    run_id: str


class RunUnarchived(Event, frozen=True, tag="run.unarchived"):
    """The run shows in default listings again."""

    run_id: str


class RunDeleted(Event, frozen=True, tag="run.deleted"):
    """The run was deleted: its files removed, the run gone from every view. Its earlier
    events stay in the log (history is never rewritten); replay drops the run here, and
    its id stays deleted: a later ``run.started`` with it is refused, and one that is in
    the log anyway leaves the run deleted."""

    run_id: str


class RunConfigUpdated(Event, frozen=True, tag="run.config_updated"):
    """Config values set after the run started (``run.config.update(...)``,
    ``run.config["b"] = 2``); keys merge over earlier ones."""

    run_id: str
    config: dict[str, Any]


class JobCleaned(Event, frozen=True, tag="job.cleaned"):
    """An ended job was dropped from the queue's views (``whirr clean``, as pueue's
    ``clean``): it leaves the job listings and status counts; its run stays."""

    job_id: JobId
