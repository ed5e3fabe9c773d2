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
