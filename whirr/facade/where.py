"""Where a run's files really are, asked of any ``Whirr`` (``whirr show``, the dashboard)."""

from __future__ import annotations

from whirr.facade.protocol import Whirr
from whirr.services.errors import InvalidRequest, NotFound
from whirr.wire import schemas
from whirr.wire.files_location import FilesLocation, locate_files


def files_location(whirr: Whirr, run: schemas.Run) -> FilesLocation:
    """The run's files' place and state; from the run alone when its place cannot say
    (a server older than file shipping has no ``/runs/{id}/files``: its files are shared
    for a job, on the script's machine for a direct run)."""
    try:
        files = whirr.run_files(run.id)
    except (NotFound, InvalidRequest):
        files = None
    return locate_files(files, run.run_dir, mode="shared" if run.job_id is not None else "local")
