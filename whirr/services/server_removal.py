"""What deleting a run removes on a server beside its run directory (``POST
/runs/{id}/delete``, after ``run.deleted`` is in the log; ``whirr.services.run_removal``
says why that order leaves nothing behind)."""

from __future__ import annotations

from collections.abc import Callable

from whirr.projections import RunView
from whirr.services.artifact_store import ArtifactStoreUnavailable, S3ArtifactStore
from whirr.services.artifact_uploads import ArtifactUploads
from whirr.services.shipping import Shipping


def remove_server_files(
    run: RunView,
    shipping: Shipping,
    uploads: ArtifactUploads,
    s3_reader: Callable[[], S3ArtifactStore],
) -> tuple[bool, str]:
    """After ``run.deleted``: remove what a server holds of ``run`` beside its run
    directory: the shipping index, partial uploads, and its artifacts in an S3 store
    (every object under its prefix, and the ones it recorded elsewhere, stored under
    another ``--artifact-store``; ``s3_reader`` reads and removes those). Whether any of
    it was there, and what to add to the delete's message; an S3 store that cannot
    remove them is said there too: the run stays deleted either way."""
    said: list[str] = []
    found = shipping.forget(run.id)
    found = uploads.forget(run.id) or found
    store = uploads.artifacts
    own = store.run_url(run.id) if isinstance(store, S3ArtifactStore) else None
    elsewhere = [
        a.location
        for a in run.artifacts
        if a.location
        and a.location.startswith("s3://")
        and (own is None or not a.location.startswith(own))
    ]
    try:
        removed = store.remove_run(run.id)
        found = found or bool(removed or elsewhere)
        if removed:
            said.append(f"{removed} artifact(s) removed from {own}")
        for location in elsewhere:
            s3_reader().remove(location)
        if elsewhere:
            said.append(f"{len(elsewhere)} artifact(s) removed from other S3 locations")
    except ArtifactStoreUnavailable as exc:
        said.append(f"its artifacts in S3 could not all be removed ({exc}): remove them by hand")
        found = True
    return found, "; ".join(said)
