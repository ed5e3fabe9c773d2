"""The event that names a project: the first of its log."""

from whirr.events.base import Event

#: The stream the project's own events are recorded in.
PROJECT_STREAM = "project"


class ProjectCreated(Event, frozen=True, tag="project.created"):
    """A project's history begins: the first event of its log (or, for a log begun by an
    older whirr, the event appended when this whirr first opened it).

    ``project_id`` is also written to ``.whirr/project-id`` beside the database, so that a
    database that was emptied, replaced or lost is told apart from this project's history.
    """

    project_id: str
    #: Job ids up to this one were used by an earlier history of the project (their run
    #: directories ``runs/job-N`` are still there): new jobs are numbered above it.
    job_id_floor: int = 0
    #: True when this history replaced a lost one on purpose (``whirr init
    #: --force-new-history``).
    replaces_lost_history: bool = False


class ProjectRestored(Event, frozen=True, tag="project.restored"):
    """The project's database was put back from a backup on purpose (``whirr restore``):
    the log up to ``backup_position`` is the backup's, this event and what follows are
    new. Recorded so that a restore is history, not a silent loss."""

    #: Where the backup was read from.
    source: str
    #: The last position the backup held (the events after it were not in the backup).
    backup_position: int
    #: When the backup was taken (its manifest's time, ISO 8601), when known.
    backup_taken_at: str = ""
    #: Job ids up to this one may have been used after the backup (their run
    #: directories ``runs/job-N`` are still there): new jobs are numbered above it.
    job_id_floor: int = 0
