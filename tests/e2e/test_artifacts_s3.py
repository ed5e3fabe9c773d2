"""The S3 artifact store (issue 16) against a real S3-compatible server: moto's server
mode on loopback, a ``whirr server --artifact-store s3://...`` in front of it, uploads by
``whirr.shipping.artifacts`` and downloads by ``whirr artifacts get``."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import boto3
import httpx
import pytest
from server_process import ServerProcess, free_port, run_cli, stop_process, wait_for

from whirr.client import WhirrClient
from whirr.shipping.artifacts import upload_artifact_file

MiB = 1 << 20
BUCKET = "whirr-artifacts"
#: Credentials moto accepts; the server reads them from the standard AWS environment.
AWS_ENV = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_DEFAULT_REGION": "us-east-1",
}


@pytest.fixture(scope="module")
def moto_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """moto's S3 server on a free loopback port, with the bucket created."""
    port = free_port()
    log = tmp_path_factory.mktemp("moto") / "moto.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "moto.server", "-p", str(port), "-H", "127.0.0.1"],
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    url = f"http://127.0.0.1:{port}"

    def up() -> bool:
        if proc.poll() is not None:
            raise AssertionError(f"moto exited:\n{log.read_text()}")
        try:
            return httpx.get(f"{url}/moto-api/", timeout=1).status_code < 500
        except httpx.TransportError:
            return False

    try:
        wait_for(up, timeout=60, interval=0.1)
        s3(url).create_bucket(Bucket=BUCKET)
        yield url
    finally:
        stop_process(proc)


def s3(url: str) -> object:
    return boto3.client("s3", endpoint_url=url, **_boto_credentials())


def _boto_credentials() -> dict[str, str]:
    return {
        "aws_access_key_id": AWS_ENV["AWS_ACCESS_KEY_ID"],
        "aws_secret_access_key": AWS_ENV["AWS_SECRET_ACCESS_KEY"],
        "region_name": AWS_ENV["AWS_DEFAULT_REGION"],
    }


@pytest.fixture(scope="module")
def server(moto_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    """A whirr server storing uploaded artifacts in the bucket (credentials from the
    environment, as on a real deployment)."""
    saved = {k: os.environ.get(k) for k in AWS_ENV}
    os.environ.update(AWS_ENV)
    try:
        proc = ServerProcess(
            Path(tmp_path_factory.mktemp("server")),
            args=(
                "--artifact-store",
                f"s3://{BUCKET}/team/whirr",
                "--s3-endpoint-url",
                moto_url,
            ),
        )
        try:
            yield proc
        finally:
            proc.stop()
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def test_uploads_land_in_the_bucket_and_download_from_it(
    server: ServerProcess, moto_url: str, tmp_path: Path
) -> None:
    with WhirrClient(server.url, token=server.token) as client:
        job_id = client.submit(["true"], "/tmp").job_id
        job = client.claim("w-s3")
        assert job is not None and job.id == job_id
        client.started(job_id, "w-s3", job.attempt, 4242)
        run_id = job.run_id
        # Bigger than a part (16 MiB): boto3 sends it as a multipart upload.
        source = tmp_path / "worker" / "artifacts" / "ckpt" / "model.bin"
        source.parent.mkdir(parents=True)
        with source.open("wb") as fh:
            for _ in range(20):
                fh.write(os.urandom(MiB))
        data = source.read_bytes()
        sha = hashlib.sha256(data).hexdigest()
        result = upload_artifact_file(client, run_id, job.attempt, source, "ckpt/model.bin")
        assert (result.stored.stored_in, result.stored.sha256) == ("s3", sha)

        # In the bucket under the prefix, nowhere on the server's disk.
        key = f"team/whirr/{run_id}/ckpt/model.bin"
        body = s3(moto_url).get_object(Bucket=BUCKET, Key=key)["Body"].read()  # type: ignore[attr-defined]
        assert body == data
        assert not (server.data_dir / "runs" / run_id / "artifacts").exists()
        assert not list((server.data_dir / "shipping" / "partial").rglob("*.part"))
        saved = client.get_run(run_id).artifacts
        assert [(a.path, a.size, a.sha256, a.stored_in) for a in saved] == [
            ("ckpt/model.bin", len(data), sha, "s3")
        ]
        listed = {f.path: f.size for f in client.list_run_files(run_id)}
        assert listed["artifacts/ckpt/model.bin"] == len(data)

    # The CLI lists it and downloads it from the bucket through the server, checked.
    listing = run_cli("artifacts", "list", run_id, "--json", server=server, cwd=tmp_path)
    assert listing.returncode == 0, listing.stderr
    rows = json.loads(listing.stdout)["artifacts"]
    assert [(r["path"], r["size"], r["sha256"]) for r in rows] == [
        ("ckpt/model.bin", len(data), sha)
    ]
    got = run_cli("artifacts", "get", run_id, "ckpt/model.bin", server=server, cwd=tmp_path)
    assert got.returncode == 0, got.stderr
    assert "sha256 verified" in got.stdout
    assert (tmp_path / "model.bin").read_bytes() == data

    # A bare name downloads too (the original whirr's spelling).
    with server.http() as http:
        assert http.get(f"/runs/{run_id}/artifacts/ckpt/model.bin").content == data

    # An object changed in the bucket behind whirr's back is refused, nothing saved.
    s3(moto_url).put_object(Bucket=BUCKET, Key=key, Body=b"tampered")  # type: ignore[attr-defined]
    out = tmp_path / "out"
    out.mkdir()
    bad = run_cli(
        "artifacts", "get", run_id, "ckpt/model.bin", "-o", str(out), server=server, cwd=tmp_path
    )
    assert bad.returncode == 1
    assert bad.stderr.startswith("Error: ") and "sha256" in bad.stderr, bad.stderr
    assert "Traceback" not in bad.stderr
    assert list(out.iterdir()) == []


def test_artifacts_get_refuses_to_replace_what_is_not_a_regular_file(
    server: ServerProcess, tmp_path: Path
) -> None:
    with WhirrClient(server.url, token=server.token) as client:
        job_id = client.submit(["true"], "/tmp").job_id
        job = client.claim("w-s3-dest")
        assert job is not None and job.id == job_id
        client.started(job_id, "w-s3-dest", job.attempt, 4242)
        source = tmp_path / "a.txt"
        source.write_bytes(b"artifact")
        upload_artifact_file(client, job.run_id, job.attempt, source, "a.txt")
    target = tmp_path / "elsewhere"
    target.write_text("keep me")
    link = tmp_path / "link"
    link.symlink_to(target)
    refused = run_cli(
        "artifacts", "get", job.run_id, "a.txt", "-o", str(link), server=server, cwd=tmp_path
    )
    assert refused.returncode == 1
    assert refused.stderr.startswith("Error: refusing to replace"), refused.stderr
    assert target.read_text() == "keep me"
    missing = run_cli("artifacts", "get", job.run_id, "nope.bin", server=server, cwd=tmp_path)
    assert missing.returncode == 1 and missing.stderr.startswith("Error: "), missing.stderr
    # A regular file is replaced.
    ok = run_cli(
        "artifacts", "get", job.run_id, "a.txt", "-o", str(target), server=server, cwd=tmp_path
    )
    assert ok.returncode == 0, ok.stderr
    assert target.read_bytes() == b"artifact"
