"""Where a run's files really are, asked of any ``Whirr`` (``whirr show``, the dashboard)."""

from __future__ import annotations

import msgspec

from whirr.facade.protocol import Whirr
from whirr.services.errors import InvalidRequest, NotFound
from whirr.wire import schemas
from whirr.wire.files_location import FilesLocation, locate_files
from whirr.wire.shipping import RunFiles


def files_location(whirr: Whirr, run: schemas.Run) -> FilesLocation:
    """The run's files' place and state; from the run alone when its place cannot say
    (a server older than file shipping has no ``/runs/{id}/files``: its files are shared
    for a job, on the script's machine for a direct run)."""
    try:
        files = whirr.run_files(run.id)
    except (NotFound, InvalidRequest):
        files = None
    location = locate_files(
        files, run.run_dir, mode="shared" if run.job_id is not None else "local"
    )
    if files is not None and location.mode != "shipped" and _all_gone(files):
        # Every run writes meta.json as it starts: none of its files means the directory
        # was removed (``rm -rf .whirr/runs/job-137``), not a run that logged nothing.
        missing = (
            f"the run's files are missing from {location.dir} (removed by hand?): no "
            "metrics, output or artifacts to show; `whirr runs delete` removes a run for good"
        )
        location = msgspec.structs.replace(location, warnings=[*location.warnings, missing])
    return location


def _all_gone(files: RunFiles) -> bool:
    return bool(files.files) and all(entry.size == 0 for entry in files.files.values())
