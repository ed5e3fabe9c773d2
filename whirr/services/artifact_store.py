"""Where a server keeps the artifacts workers upload: its own data dir, or an S3 bucket.

An upload is first received into a partial file under ``<data-dir>/shipping/partial/``
(``whirr.services.artifact_uploads``); once its size and sha256 check out, the store takes
the finished file:

- :class:`LocalArtifactStore` (the default) moves it to ``runs/<run_id>/artifacts/<path>``,
  creating the directories on the way one at a time, never through a symlink a job may
  have planted in its run directory (``whirr.runfiles``), owner-only (``whirr.filemodes``).
- :class:`S3ArtifactStore` (``whirr server --artifact-store s3://bucket/prefix``) uploads
  it to ``<prefix>/<run_id>/<path>`` in parts read from disk (boto3's managed multipart
  transfer: never the whole file in memory), then removes the partial file. Credentials
  come from the standard AWS environment and config files; ``--s3-endpoint-url`` (or
  ``AWS_ENDPOINT_URL``) points it at an S3-compatible server (MinIO, Ceph, moto).

``put`` answers the artifact's location: None for the run directory, ``s3://bucket/key``
for a bucket; the ``run.artifact_saved`` event records it so downloads know where to look.
boto3 is an optional extra (``whirr[s3]``), imported only when an S3 store is used.
"""

from __future__ import annotations

import contextlib
import errno
import os
import shutil
from pathlib import Path
from typing import Any, BinaryIO, NamedTuple, Protocol

from whirr.filemodes import DIR_MODE, FILE_MODE
from whirr.runfiles import check_name
from whirr.services.errors import InvalidRequest, InvalidState, WhirrError
from whirr.services.run_files import check_run_id
from whirr.services.run_removal import remove_run_dir

#: Parts of a multipart upload to S3 (the file is read from disk one part at a time).
S3_PART_SIZE = 16 << 20


class ArtifactStoreUnavailable(WhirrError):
    """The artifact store could not take or give a file (S3 down, wrong credentials)."""

    status = 503


class StoredFile(NamedTuple):
    """An artifact opened for download: a reader with ``read(n)``/``close()``, its size."""

    reader: BinaryIO
    size: int


class ArtifactStore(Protocol):
    """What the upload routes need of a store."""

    #: Shown by ``whirr server`` at start: where artifacts go.
    description: str

    def put(self, run_id: str, parts: tuple[str, ...], source: Path) -> str | None:
        """Take the finished file ``source`` (moved or copied away: it is gone after) as
        the artifact ``parts`` of the run; its location (None: the run directory)."""
        ...

    def remove_run(self, run_id: str) -> int:
        """Remove what this store holds of a deleted run outside its run directory (the
        delete removes that); how many objects."""
        ...

    def remove_stored(self, run_id: str, location: str | None) -> None:
        """Take back an artifact ``put`` just stored at ``location`` for a run deleted
        meanwhile."""
        ...


class LocalArtifactStore:
    """Artifacts under the server's ``runs/<run_id>/artifacts/``."""

    def __init__(self, runs_dir: Path) -> None:
        self.runs_dir = runs_dir
        self.description = f"{runs_dir}/<run>/artifacts"

    def put(self, run_id: str, parts: tuple[str, ...], source: Path) -> str | None:
        parent = make_dirs(self.runs_dir, (run_id, "artifacts", *parts[:-1]))
        try:
            name = check_name(parts[-1])
            try:
                os.rename(source, name, dst_dir_fd=parent)
            except IsADirectoryError:
                raise InvalidState(
                    f"artifact {'/'.join(parts)!r} of run {run_id} is a directory on the server"
                ) from None
            except OSError as exc:
                if exc.errno != errno.EXDEV:
                    raise
                _copy_into(source, parent, name)  # runs/ on another filesystem
                source.unlink()
        finally:
            os.close(parent)
        return None

    def remove_run(self, run_id: str) -> int:
        return 0  # its artifacts are in its run directory, which the delete removes

    def remove_stored(self, run_id: str, location: str | None) -> None:
        remove_run_dir(self.runs_dir, run_id)  # ``put`` made it again: all of it goes


def make_dirs(base: Path, parts: tuple[str, ...]) -> int:
    """A descriptor of ``base/parts...``, each missing directory created 0700 and each
    component opened without following a symlink (422 when one is in the way)."""
    fd = os.open(base, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        for part in parts:
            name = check_name(part)
            # A directory already there is fine; anything else fails the open below.
            with contextlib.suppress(FileExistsError):
                os.mkdir(name, DIR_MODE, dir_fd=fd)
            try:
                child = os.open(
                    name, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=fd
                )
            except OSError as exc:
                if exc.errno in (errno.ELOOP, errno.ENOTDIR):
                    raise InvalidRequest(
                        f"{'/'.join(parts)!r} has a symlink or a file in the way"
                    ) from None
                raise
            os.close(fd)
            fd = child
    except BaseException:
        os.close(fd)
        raise
    return fd


def _copy_into(source: Path, dir_fd: int, name: str) -> None:
    """Copy ``source`` to ``name`` in ``dir_fd`` through a hidden temporary name, so a
    reader never sees half of it."""
    tmp = f".{name}.{os.getpid()}.tmp"
    flags = os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW | os.O_CLOEXEC
    fd = os.open(tmp, flags, FILE_MODE, dir_fd=dir_fd)
    try:
        with os.fdopen(fd, "wb") as out, source.open("rb") as src:
            shutil.copyfileobj(src, out, 1 << 20)
        os.rename(tmp, name, src_dir_fd=dir_fd, dst_dir_fd=dir_fd)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp, dir_fd=dir_fd)
        raise


class S3ArtifactStore:
    """Artifacts in ``s3://bucket/prefix/<run_id>/<path>``."""

    def __init__(self, url: str, endpoint_url: str | None = None) -> None:
        self.bucket, self.prefix = parse_s3_url(url)
        self.endpoint_url = endpoint_url
        self.description = url.rstrip("/") + "/<run>/<path>"
        self._client: Any = None

    def client(self) -> Any:
        """The boto3 S3 client, made on first use (boto3 is an optional extra)."""
        if self._client is None:
            try:
                import boto3
            except ImportError:
                raise ArtifactStoreUnavailable(
                    "an s3:// artifact store needs boto3: pip install 'whirr[s3]'"
                ) from None
            # Without an explicit endpoint boto3 reads AWS_ENDPOINT_URL(_S3) itself.
            self._client = boto3.client("s3", endpoint_url=self.endpoint_url or None)
        return self._client

    def key(self, run_id: str, parts: tuple[str, ...]) -> str:
        """The object key of artifact ``parts`` of ``run_id``."""
        return "/".join(p for p in (self.prefix, run_id, *parts) if p)

    def put(self, run_id: str, parts: tuple[str, ...], source: Path) -> str | None:
        from boto3.s3.transfer import TransferConfig

        key = self.key(run_id, parts)
        config = TransferConfig(
            multipart_threshold=S3_PART_SIZE, multipart_chunksize=S3_PART_SIZE, max_concurrency=4
        )
        try:
            self.client().upload_file(str(source), self.bucket, key, Config=config)
        except WhirrError:
            raise
        except Exception as exc:  # botocore's errors: no connection, denied, no bucket
            raise ArtifactStoreUnavailable(f"cannot store s3://{self.bucket}/{key}: {exc}") from exc
        source.unlink()
        return f"s3://{self.bucket}/{key}"

    def remove_run(self, run_id: str) -> int:
        """Remove every object under ``<prefix>/<run_id>/``: recorded or not (a ``put``
        whose record never came), never another run's (the key ends with ``/``)."""
        run_prefix = self.key(check_run_id(run_id), ()) + "/"
        removed = 0
        try:
            pages = self.client().get_paginator("list_objects_v2")
            for page in pages.paginate(Bucket=self.bucket, Prefix=run_prefix):
                keys = [{"Key": o["Key"]} for o in page.get("Contents", [])]
                if keys:  # a listing page holds at most 1,000: one delete_objects each
                    answer = self.client().delete_objects(
                        Bucket=self.bucket, Delete={"Objects": keys, "Quiet": True}
                    )
                    failed = answer.get("Errors") or []
                    if failed:
                        raise ArtifactStoreUnavailable(
                            f"cannot remove s3://{self.bucket}/{failed[0].get('Key')}: "
                            f"{failed[0].get('Message')}"
                        )
                    removed += len(keys)
        except WhirrError:
            raise
        except Exception as exc:  # botocore's errors: no connection, denied, no bucket
            raise ArtifactStoreUnavailable(
                f"cannot remove s3://{self.bucket}/{run_prefix}: {exc}"
            ) from exc
        return removed

    def remove_stored(self, run_id: str, location: str | None) -> None:
        if location is not None:
            self.remove(location)

    def remove(self, location: str) -> None:
        """Remove the object at ``location`` (an ``s3://`` URL; gone already is fine)."""
        bucket, key = parse_s3_url(location)
        try:
            self.client().delete_object(Bucket=bucket, Key=key)
        except WhirrError:
            raise
        except Exception as exc:
            raise ArtifactStoreUnavailable(f"cannot remove {location}: {exc}") from exc

    def run_url(self, run_id: str) -> str:
        """Where the run's objects are: ``s3://bucket/prefix/<run_id>/``."""
        return f"s3://{self.bucket}/{self.key(run_id, ())}/"

    def open(self, location: str) -> StoredFile:
        """The object at ``location`` (an ``s3://`` URL this store wrote), streamed."""
        bucket, key = parse_s3_url(location)
        try:
            answer = self.client().get_object(Bucket=bucket, Key=key)
        except WhirrError:
            raise
        except Exception as exc:
            raise ArtifactStoreUnavailable(f"cannot read {location}: {exc}") from exc
        return StoredFile(answer["Body"], int(answer["ContentLength"]))


def parse_s3_url(url: str) -> tuple[str, str]:
    """``s3://bucket/some/prefix`` -> (``bucket``, ``some/prefix``); 422 for anything else."""
    if not url.startswith("s3://"):
        raise InvalidRequest(f"not an s3:// URL: {url!r}")
    bucket, _, prefix = url[len("s3://") :].partition("/")
    if not bucket or "/" in bucket:
        raise InvalidRequest(f"no bucket in {url!r} (s3://bucket/prefix)")
    return bucket, prefix.strip("/")


def open_artifact_store(
    spec: str | None, runs_dir: Path, endpoint_url: str | None = None
) -> LocalArtifactStore | S3ArtifactStore:
    """The store ``whirr server --artifact-store`` names: None or ``local`` for the data
    dir, ``s3://bucket/prefix`` for a bucket."""
    if spec is None or spec in ("", "local"):
        return LocalArtifactStore(runs_dir)
    if spec.startswith("s3://"):
        return S3ArtifactStore(spec, endpoint_url)
    raise InvalidRequest(f"artifact store must be 'local' or s3://bucket/prefix, not {spec!r}")
