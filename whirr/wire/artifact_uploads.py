"""Bodies of the artifact upload routes: how a worker without the server's filesystem
sends a finished artifact (issue 16; docs/http-api.md "Artifact uploads").

``PUT /runs/{id}/artifacts/{path}?attempt=K&offset=N`` streams bytes into a partial file;
``GET /runs/{id}/uploads/{path}?attempt=K`` says how much arrived (where to resume);
``POST /runs/{id}/artifacts/{path}/complete?attempt=K`` checks size and sha256 and stores
it. Pure like ``schemas``: nothing but msgspec.
"""

from __future__ import annotations

from typing import Annotated

from msgspec import Meta

from whirr.wire.schemas import Body, Run

#: A hex SHA-256 digest (lower case).
Sha256 = Annotated[str, Meta(pattern="^[0-9a-f]{64}$")]
ArtifactSize = Annotated[int, Meta(ge=0, le=2**62)]


class ArtifactUploadSize(Body):
    """``GET /runs/{id}/uploads/{path}`` (and the answer of each ``PUT``): the bytes of the
    partial upload on the server, and the largest artifact it takes."""

    size: int
    max_size: int


class CompleteArtifactRequest(Body):
    """``POST /runs/{id}/artifacts/{path}/complete``: the whole file's size and sha256."""

    size: ArtifactSize
    sha256: Sha256


class StoredArtifact(Body):
    """The answer of ``complete``: the artifact as recorded (``run.artifact_saved``)."""

    path: str
    size: int
    sha256: str
    #: ``local`` (the server's run directory) or ``s3`` (its artifact store).
    stored_in: str


class DownloadedArtifact(Body):
    """What ``whirr artifacts get`` saved: where, how big, its sha256, and whether that
    was checked against the sha256 the run recorded (uploaded artifacts have one)."""

    dest: str
    size: int
    sha256: str
    verified: bool


def recorded_sha256(run: Run, path: str) -> str | None:
    """The sha256 the run's latest record of artifact ``path`` carries (None: unknown)."""
    for saved in reversed(run.artifacts):
        if saved.path == path:
            return saved.sha256
    return None
