"""Deleting a run on a real ``whirr server`` leaves nothing of it behind (issue 19 item 1):
its run directory, its artifacts in an S3 store (moto's server on loopback), its shipping
index and partial uploads; later uploads for it are refused (410, ``reason:
run_deleted``) and recreate nothing, and its id is never started again."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from server_process import ServerProcess
from test_artifacts_s3 import AWS_ENV, BUCKET, moto_url, s3

from whirr.client import WhirrClient
from whirr.facade.http import HttpWhirr
from whirr.shipping.artifacts import upload_artifact_file
from whirr.wire.run_events import RunStartRequest

__all__ = ["moto_url"]  # the fixture, shared with test_artifacts_s3

PREFIX = "team/deleting"


@pytest.fixture(scope="module")
def s3_server(moto_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    """A whirr server storing uploaded artifacts in moto's bucket."""
    saved = {k: os.environ.get(k) for k in AWS_ENV}
    os.environ.update(AWS_ENV)
    try:
        proc = ServerProcess(
            Path(tmp_path_factory.mktemp("server")),
            args=("--artifact-store", f"s3://{BUCKET}/{PREFIX}", "--s3-endpoint-url", moto_url),
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


def api(server: ServerProcess) -> httpx.Client:
    headers = {
        "Authorization": f"Bearer {server.token}",
        "Content-Type": "application/octet-stream",  # the uploads' (json= sets its own)
    }
    return httpx.Client(base_url=f"{server.url}/api/v1", headers=headers, timeout=30)


def keys_of(moto: str, run_id: str) -> list[str]:
    listed = s3(moto).list_objects_v2(Bucket=BUCKET, Prefix=f"{PREFIX}/{run_id}/")  # type: ignore[attr-defined]
    return sorted(o["Key"] for o in listed.get("Contents", []))


def left_on_disk(data_dir: Path, run_id: str) -> list[str]:
    """Whatever of the run the server's data dir still holds."""
    places = [
        data_dir / "runs" / run_id,
        data_dir / "shipping" / f"{run_id}.json",
        data_dir / "shipping" / "partial" / run_id,
    ]
    return [str(p.relative_to(data_dir)) for p in places if p.exists() or p.is_symlink()]


def assert_refused_as_deleted(answer: httpx.Response) -> None:
    assert answer.status_code == 410, answer.text
    assert answer.json()["reason"] == "run_deleted"
    assert "deleted" in answer.json()["detail"]


def test_a_deleted_run_leaves_nothing_on_the_server_and_takes_no_uploads(
    s3_server: ServerProcess, moto_url: str, tmp_path: Path
) -> None:
    server = s3_server
    with WhirrClient(server.url, token=server.token) as client:
        job_id = client.submit(["true"], "/tmp").job_id
        job = client.claim("w-del")
        assert job is not None and job.id == job_id
        run_id, attempt = job.run_id, job.attempt
        client.started(job_id, "w-del", attempt, 4242, files="shipped", run_dir="/w/run")
        # Shipped run files (the shipping index), an artifact in the bucket, an upload
        # left half way (a partial file) and an object whirr never recorded (a store
        # that crashed between storing and recording).
        client.upload_run_file(run_id, "output.log", attempt, 0, b"hello\n")
        client.upload_run_file(run_id, "meta.json", attempt, 0, b"{}")
        source = tmp_path / "model.bin"
        source.write_bytes(os.urandom(4096))
        upload_artifact_file(client, run_id, attempt, source, "ckpt/model.bin")
        client.upload_artifact(run_id, "half.bin", attempt, 0, b"12345", 5)
        s3(moto_url).put_object(Bucket=BUCKET, Key=f"{PREFIX}/{run_id}/orphan", Body=b"x")  # type: ignore[attr-defined]
        client.complete(job_id, "w-del", attempt, 0, run_id=run_id)
        # Another run's object under a key that starts like this one's stays.
        other = f"{PREFIX}/{run_id}0/keep"
        s3(moto_url).put_object(Bucket=BUCKET, Key=other, Body=b"keep")  # type: ignore[attr-defined]

        assert keys_of(moto_url, run_id) == sorted(
            [f"{PREFIX}/{run_id}/ckpt/model.bin", f"{PREFIX}/{run_id}/orphan"]
        )
        assert sorted(left_on_disk(server.data_dir, run_id)) == sorted(
            [f"runs/{run_id}", f"shipping/{run_id}.json", f"shipping/partial/{run_id}"]
        )
        deleted = client.delete_run(run_id)
        assert deleted.files_removed
        assert "2 artifact(s) removed from s3://" in deleted.message, deleted.message

    assert keys_of(moto_url, run_id) == []
    assert s3(moto_url).get_object(Bucket=BUCKET, Key=other)["Body"].read() == b"keep"  # type: ignore[attr-defined]
    assert left_on_disk(server.data_dir, run_id) == []

    # Uploads that come later (a worker still shipping its tail) are refused, and
    # recreate nothing: not the run directory, not the index, not a partial file.
    sha = hashlib.sha256(b"late").hexdigest()
    with api(server) as http:
        q = {"attempt": attempt, "offset": 0}
        assert_refused_as_deleted(
            http.put(f"/runs/{run_id}/files/output.log", content=b"x", params=q)
        )
        assert_refused_as_deleted(
            http.put(f"/runs/{run_id}/files/meta.json", content=b"{}", params=q)
        )
        assert_refused_as_deleted(
            http.post(
                f"/runs/{run_id}/files/final", params={"attempt": attempt}, json={"files": {}}
            )
        )
        assert_refused_as_deleted(
            http.put(f"/runs/{run_id}/artifacts/late.bin", content=b"late", params=q)
        )
        assert_refused_as_deleted(
            http.post(
                f"/runs/{run_id}/artifacts/late.bin/complete",
                params={"attempt": attempt},
                json={"size": 4, "sha256": sha},
            )
        )
        # A second delete says it is gone, as any read of it does.
        assert_refused_as_deleted(http.post(f"/runs/{run_id}/delete"))
    assert left_on_disk(server.data_dir, run_id) == []
    assert keys_of(moto_url, run_id) == []


def test_a_deleted_direct_run_id_is_never_started_again(
    server: ServerProcess, tmp_path: Path
) -> None:
    """On SQLite and PostgreSQL: a start with a deleted id (new or ``resume``) is refused
    under the write lock. The deleting machine's copies of the run's files go too."""
    with WhirrClient(server.url, token=server.token) as client:
        client.start_run(RunStartRequest(run_id="local-gone", hostname="elsewhere", pid=1))
        client.finish_run("local-gone", "completed")
        mirror = tmp_path / "cache" / "runs" / "local-gone"
        mirror.mkdir(parents=True)
        (mirror / "metrics.jsonl").write_text("{}\n")
        HttpWhirr(client, cache_dir=tmp_path / "cache").delete_run("local-gone")
        assert not mirror.exists()
    with api(server) as http:
        for resume in (False, True):
            answer = http.post(
                "/runs", json={"run_id": "local-gone", "hostname": "h", "resume": resume}
            )
            assert_refused_as_deleted(answer)
            assert "whirr runs delete" in answer.json()["detail"]
        assert http.get("/runs/local-gone").status_code in (404, 410)
        # A fresh id still starts.
        assert http.post("/runs", json={"run_id": "local-fresh", "hostname": "h"}).status_code < 300
        ids = [r["id"] for r in http.get("/runs", params={"archived": "include"}).json()["runs"]]
    assert "local-gone" not in ids and "local-fresh" in ids
