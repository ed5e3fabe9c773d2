"""The server's artifact uploads and store, shared by the upload routes and the run file
routes (which serve and list artifacts kept in an S3 store, not in the run directory)."""

from __future__ import annotations

import weakref

from sanic import Request

from whirr.api.routing import backend
from whirr.projections import RunView
from whirr.services.artifact_store import S3ArtifactStore, open_artifact_store
from whirr.services.artifact_uploads import ArtifactUploads

_ARTIFACTS = "artifacts/"


def uploads(request: Request) -> ArtifactUploads:
    """The server's uploads (made on first use, with the store ``--artifact-store`` names)."""
    found: ArtifactUploads | None = getattr(request.app.ctx, "artifact_uploads", None)
    if found is None:
        b = backend(request)
        config = b.config
        store = open_artifact_store(config.artifact_store, config.runs_dir, config.s3_endpoint_url)
        found = ArtifactUploads(b.store, config.data_path, store, config.max_artifact_size)
        request.app.ctx.artifact_uploads = found
        request.app.ctx.upload_locks = weakref.WeakValueDictionary()
    return found


def s3_location(run: RunView, path: str) -> str | None:
    """The ``s3://`` location of the run's artifact ``path`` (``artifacts/NAME`` or a bare
    ``NAME``), when the run recorded it in an S3 store; None otherwise."""
    rel = path.removeprefix(_ARTIFACTS)
    for saved in reversed(run.artifacts):
        if saved.path == rel:
            location = saved.location
            return location if location and location.startswith("s3://") else None
    return None


def s3_store(request: Request) -> S3ArtifactStore:
    """The store that reads ``s3://`` locations: the server's own when it is one, else
    one made for reading (a server restarted without ``--artifact-store`` still serves
    what it stored before, given the credentials)."""
    store = uploads(request).artifacts
    if isinstance(store, S3ArtifactStore):
        return store
    reader: S3ArtifactStore | None = getattr(request.app.ctx, "s3_reader", None)
    if reader is None:
        reader = S3ArtifactStore("s3://reader", backend(request).config.s3_endpoint_url)
        request.app.ctx.s3_reader = reader
    return reader
