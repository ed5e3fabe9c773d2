"""Bodies of the run and job management routes (``whirr/api/routes/run_manage.py``):
rename, tags, note, config, archive, delete, clean. The bounds are the events' own
(``whirr.events.manage``), so a request the log would refuse is a 422 naming the field."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from msgspec import Meta

from whirr.events.manage import Note, RunName, Tag
from whirr.wire.schemas import Body

#: Which runs a listing shows: not archived (the default), only archived, or every run.
ArchivedFilter = Literal["exclude", "only", "include"]
#: Seconds (``whirr clean --older-than``): at most what a CLI duration takes (115 days).
OlderThan = Annotated[float, Meta(ge=0, le=10_000_000)]


class RunRenameRequest(Body):
    """``POST /runs/{id}/rename``."""

    name: RunName


class RunTagsRequest(Body):
    """``POST /runs/{id}/tags``: tags to add and tags to remove (either may be empty, not
    both)."""

    add: Annotated[list[Tag], Meta(max_length=100)] = []
    remove: Annotated[list[Tag], Meta(max_length=100)] = []


class RunNoteRequest(Body):
    """``POST /runs/{id}/note``: the note's new text, or a paragraph to append."""

    text: Note
    append: bool = False


class RunConfigRequest(Body):
    """``POST /runs/{id}/config``: config values set after the run started (merged)."""

    config: dict[str, Any]


class RunDeleteResponse(Body):
    """``POST /runs/{id}/delete``."""

    run_id: str
    message: str
    #: Whether a run directory was found and removed.
    files_removed: bool


class CleanRequest(Body):
    """``POST /jobs/clean``: which ended jobs leave the queue's views."""

    #: Only jobs that ended at least this many seconds ago (None: any ended job).
    older_than_seconds: OlderThan | None = None
    #: Only jobs with one of these statuses (None: every ended status).
    statuses: Annotated[list[str], Meta(max_length=10)] | None = None


class CleanResponse(Body):
    """``POST /jobs/clean``."""

    message: str
    cleaned: list[int]
    count: int


def archived_filter(flag: bool | None) -> ArchivedFilter:
    """A listing's filter for the store's ``archived`` argument (``archived_flag``'s
    inverse)."""
    if flag is None:
        return "include"
    return "only" if flag else "exclude"


def archived_flag(which: ArchivedFilter | str | None) -> bool | None:
    """The store's ``archived`` argument for a listing's filter (None: every run)."""
    if which in (None, "", "exclude"):
        return False
    if which == "only":
        return True
    if which == "include":
        return None
    raise ValueError(f"archived must be exclude, only or include, not {which!r}")
