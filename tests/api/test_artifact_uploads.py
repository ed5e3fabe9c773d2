"""Artifact uploads (issue 16): streamed, resumable, size- and sha256-checked, against a
real ``whirr server``; the Python side (``whirr.shipping.artifacts``) tested directly."""

from __future__ import annotations

import hashlib
import os
import socket
import stat
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from server_process import ServerProcess, wait_for

from whirr.client import WhirrClient
from whirr.services.errors import InvalidRequest, OffsetGap, StaleAttempt
from whirr.shipping.artifacts import upload_artifact_file
from whirr.wire.run_events import RunStartRequest

MiB = 1 << 20


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    """One server for the module, taking artifacts of up to 64 MiB."""
    proc = ServerProcess(
        Path(tmp_path_factory.mktemp("server")), args=("--max-artifact-size", "64MiB")
    )
    yield proc
    proc.stop()


def job_run(client: WhirrClient, worker: str) -> tuple[str, int]:
    """A job's run a (pretend) worker claimed and started: (run id, attempt)."""
    client.cancel_all_queued()
    job_id = client.submit(["true"], "/tmp").job_id
    job = client.claim(worker)
    assert job is not None and job.id == job_id
    client.started(job_id, worker, job.attempt, 4242)
    return job.run_id, job.attempt


def put(
    server: ServerProcess, run_id: str, path: str, data: bytes, attempt: int, offset: int = 0
) -> httpx.Response:
    with server.http() as http:
        return http.put(
            f"/runs/{run_id}/artifacts/{path}",
            params={"attempt": attempt, "offset": offset},
            content=data,
            headers={"Content-Type": "application/octet-stream"},
        )


def complete(
    server: ServerProcess, run_id: str, path: str, attempt: int, size: int, sha: str
) -> httpx.Response:
    with server.http() as http:
        return http.post(
            f"/runs/{run_id}/artifacts/{path}/complete",
            params={"attempt": attempt},
            json={"size": size, "sha256": sha},
        )


def upload_size(server: ServerProcess, run_id: str, path: str, attempt: int) -> int:
    with server.http() as http:
        resp = http.get(f"/runs/{run_id}/uploads/{path}", params={"attempt": attempt})
        assert resp.status_code == 200, resp.text
        return int(resp.json()["size"])


def test_upload_in_parts_complete_and_download(
    server: ServerProcess, client: WhirrClient, tmp_path: Path
) -> None:
    run_id, attempt = job_run(client, "w-up")
    data = os.urandom(3 * MiB + 17)
    sha = hashlib.sha256(data).hexdigest()
    first = put(server, run_id, "ckpt/model.pt", data[:MiB], attempt)
    assert first.status_code == 200, first.text
    assert first.json() == {"size": MiB, "max_size": 64 * MiB}
    # A retry of bytes the server has already appends only what is new (idempotent).
    again = put(server, run_id, "ckpt/model.pt", data[MiB // 2 : 2 * MiB], attempt, MiB // 2)
    assert again.json()["size"] == 2 * MiB
    # A gap is refused with the size to resume from.
    gap = put(server, run_id, "ckpt/model.pt", data[3 * MiB :], attempt, 3 * MiB)
    assert gap.status_code == 409
    assert (gap.json()["reason"], gap.json()["size"]) == ("offset_gap", 2 * MiB)
    with pytest.raises(OffsetGap) as caught:
        client.upload_artifact(run_id, "ckpt/model.pt", attempt, 3 * MiB, b"x", 1)
    assert caught.value.size == 2 * MiB
    assert put(server, run_id, "ckpt/model.pt", data[2 * MiB :], attempt, 2 * MiB).is_success
    # Nothing is in the run directory before complete: a job must not see half a file.
    stored = server.data_dir / "runs" / run_id / "artifacts" / "ckpt" / "model.pt"
    assert not stored.exists()

    done = complete(server, run_id, "ckpt/model.pt", attempt, len(data), sha)
    assert done.status_code == 200, done.text
    assert done.json() == {
        "path": "ckpt/model.pt",
        "size": len(data),
        "sha256": sha,
        "stored_in": "local",
    }
    assert stored.read_bytes() == data
    assert stat.S_IMODE(stored.stat().st_mode) == 0o600
    assert stat.S_IMODE(stored.parent.stat().st_mode) == 0o700
    saved = [a for a in client.get_run(run_id).artifacts if a.path == "ckpt/model.pt"]
    assert [(a.size, a.sha256, a.stored_in) for a in saved] == [(len(data), sha, None)]
    # A retried complete (its first answer lost) answers the same; nothing is recorded twice.
    assert complete(server, run_id, "ckpt/model.pt", attempt, len(data), sha).json() == done.json()
    assert len(client.get_run(run_id).artifacts) == 1

    got = client.download_artifact(run_id, "ckpt/model.pt", tmp_path, sha256=sha)
    assert got.read_bytes() == data
    assert "artifacts/ckpt/model.pt" in {f.path for f in client.list_run_files(run_id)}


def test_the_python_uploader_resumes_after_an_interrupted_upload(
    server: ServerProcess, client: WhirrClient, tmp_path: Path
) -> None:
    run_id, attempt = job_run(client, "w-resume")
    run_dir = tmp_path / run_id
    (run_dir / "artifacts").mkdir(parents=True)
    source = run_dir / "artifacts" / "weights.bin"
    data = os.urandom(6 * MiB)
    source.write_bytes(data)
    # A worker cut off mid-upload: 4 MiB of a 6 MiB PUT sent, then the connection dies.
    sock = socket.create_connection(("127.0.0.1", server.port), timeout=30)
    try:
        head = (
            f"PUT /api/v1/runs/{run_id}/artifacts/weights.bin?attempt={attempt}&offset=0 "
            f"HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {server.token}\r\n"
            f"Content-Type: application/octet-stream\r\nContent-Length: {len(data)}\r\n\r\n"
        )
        sock.sendall(head.encode() + data[: 4 * MiB])
        # The server wrote what it received (in 1 MiB batches) before the cut.
        wait_for(lambda: upload_size(server, run_id, "weights.bin", attempt) >= 3 * MiB)
    finally:
        sock.close()
    before = upload_size(server, run_id, "weights.bin", attempt)

    result = upload_artifact_file(client, run_id, attempt, source, "weights.bin")
    assert result.sent <= len(data) - before  # only the rest travelled
    assert result.stored.sha256 == hashlib.sha256(data).hexdigest()
    stored = server.data_dir / "runs" / run_id / "artifacts" / "weights.bin"
    assert stored.read_bytes() == data
    # An empty file uploads too.
    (run_dir / "artifacts" / "empty").write_bytes(b"")
    empty = upload_artifact_file(client, run_id, attempt, run_dir / "artifacts" / "empty", "empty")
    assert (empty.stored.size, empty.sent) == (0, 0)
    assert (server.data_dir / "runs" / run_id / "artifacts" / "empty").read_bytes() == b""


def test_the_python_uploader_refuses_a_symlink_planted_in_the_run_dir(
    client: WhirrClient, tmp_path: Path
) -> None:
    run_id, attempt = job_run(client, "w-symlink")
    secret = tmp_path / "worker-token"
    secret.write_text("s3cret")
    artifacts = tmp_path / run_id / "artifacts"
    artifacts.mkdir(parents=True)
    (artifacts / "model.pt").symlink_to(secret)
    with pytest.raises(InvalidRequest, match="not a regular file"):
        upload_artifact_file(client, run_id, attempt, artifacts / "model.pt", "model.pt")


def test_a_wrong_sha256_is_422_and_the_upload_is_discarded(
    server: ServerProcess, client: WhirrClient
) -> None:
    run_id, attempt = job_run(client, "w-sha")
    assert put(server, run_id, "a.bin", b"hello world", attempt).is_success
    wrong = complete(server, run_id, "a.bin", attempt, 11, hashlib.sha256(b"other").hexdigest())
    assert wrong.status_code == 422
    assert "sha256" in wrong.json()["detail"]
    assert upload_size(server, run_id, "a.bin", attempt) == 0  # discarded
    assert not (server.data_dir / "runs" / run_id / "artifacts" / "a.bin").exists()
    assert client.get_run(run_id).artifacts == []
    # The wrong size too.
    assert put(server, run_id, "a.bin", b"hello world", attempt).is_success
    short = complete(
        server, run_id, "a.bin", attempt, 10, hashlib.sha256(b"hello worl").hexdigest()
    )
    assert short.status_code == 422
    assert upload_size(server, run_id, "a.bin", attempt) == 0


def test_an_artifact_over_the_size_limit_is_413(tmp_path: Path) -> None:
    small = ServerProcess(tmp_path, args=("--max-artifact-size", "1KiB"))
    try:
        with WhirrClient(small.url, token=small.token) as client:
            run_id, attempt = job_run(client, "w-big")
            ok = put(small, run_id, "fits.bin", b"x" * 1024, attempt)
            assert ok.status_code == 200, ok.text
            big = put(small, run_id, "big.bin", b"x" * 1025, attempt)
            assert big.status_code == 413
            # Growing past the limit in a second request is refused too.
            more = put(small, run_id, "fits.bin", b"y", attempt, 1024)
            assert more.status_code == 413
            assert upload_size(small, run_id, "fits.bin", attempt) == 1024
            # The Python uploader says so before sending anything.
            source = tmp_path / "big.bin"
            source.write_bytes(b"z" * 2048)
            with pytest.raises(InvalidRequest, match="larger than the server takes"):
                upload_artifact_file(client, run_id, attempt, source, "big.bin")
    finally:
        small.stop()


def test_a_stale_attempt_is_409(server: ServerProcess, client: WhirrClient) -> None:
    run_id, attempt = job_run(client, "w-stale")
    for stale in (attempt - 1, attempt + 1):
        resp = put(server, run_id, "m.bin", b"data", stale)
        assert resp.status_code == 409
        assert (resp.json()["reason"], resp.json()["attempt"]) == ("stale_attempt", attempt)
        with server.http() as http:
            size = http.get(f"/runs/{run_id}/uploads/m.bin", params={"attempt": stale})
        assert size.status_code == 409
        sha = hashlib.sha256(b"data").hexdigest()
        assert complete(server, run_id, "m.bin", stale, 4, sha).status_code == 409
    with pytest.raises(StaleAttempt) as caught:
        client.artifact_upload_size(run_id, "m.bin", attempt + 1)
    assert caught.value.attempt == attempt
    # A direct run uploads as attempt 0.
    direct = client.start_run(RunStartRequest(run_id="local-direct-up-1", run_dir="/elsewhere"))
    assert put(server, direct.id, "d.bin", b"direct", 0).status_code == 200
    assert put(server, direct.id, "d.bin", b"direct", 1).status_code == 409


@pytest.mark.parametrize(
    "path",
    [
        "/api/v1/runs/{run}/artifacts/..%2F..%2Fescape?attempt={a}",
        "/api/v1/runs/{run}/artifacts/a/%2E%2E/%2E%2E/%2E%2E/escape?attempt={a}",
        "/api/v1/runs/{run}/artifacts/%2Fetc%2Fpasswd?attempt={a}",
        "/api/v1/runs/{run}/artifacts/a//b?attempt={a}",
        "/api/v1/runs/..%2Fjob-1/artifacts/x?attempt={a}",
    ],
)
def test_a_path_that_leaves_the_artifacts_is_422(
    server: ServerProcess, client: WhirrClient, path: str
) -> None:
    run_id, attempt = job_run(client, "w-traverse")
    status, answer = server.raw(
        "PUT",
        path.format(run=run_id, a=attempt),
        body=b"evil",
        headers={"Content-Type": "application/octet-stream"},
    )
    assert status == 422, answer
    partial = server.data_dir / "shipping" / "partial" / run_id
    leaked = [*server.data_dir.rglob("escape"), *partial.rglob("*.part")]
    assert leaked == []


def test_a_symlink_planted_in_the_server_run_dir_is_not_followed(
    server: ServerProcess, client: WhirrClient, tmp_path: Path
) -> None:
    run_id, attempt = job_run(client, "w-plant")
    outside = tmp_path / "outside"
    outside.mkdir()
    run_dir = server.data_dir / "runs" / run_id
    run_dir.mkdir(parents=True, exist_ok=True)
    (run_dir / "artifacts").symlink_to(outside)
    assert put(server, run_id, "x.bin", b"data", attempt).is_success
    resp = complete(server, run_id, "x.bin", attempt, 4, hashlib.sha256(b"data").hexdigest())
    assert resp.status_code == 422
    assert list(outside.iterdir()) == []


def test_a_50_mb_upload_does_not_grow_the_server_by_its_size(
    server: ServerProcess, client: WhirrClient, tmp_path: Path
) -> None:
    run_id, attempt = job_run(client, "w-rss")
    source = tmp_path / "big.bin"
    with source.open("wb") as fh:
        for _ in range(50):
            fh.write(os.urandom(MiB))
    # Warm up (first-use imports and pools), then measure the peak resident set.
    warm = tmp_path / "warm.bin"
    warm.write_bytes(os.urandom(2 * MiB))
    upload_artifact_file(client, run_id, attempt, warm, "warm.bin")
    before = _peak_rss(server.proc.pid)
    result = upload_artifact_file(client, run_id, attempt, source, "big.bin")
    growth = _peak_rss(server.proc.pid) - before
    assert result.stored.size == 50 * MiB
    assert growth < 20 * MiB, f"server peak RSS grew {growth / MiB:.1f} MiB for a 50 MiB file"
    stored = server.data_dir / "runs" / run_id / "artifacts" / "big.bin"
    assert stored.stat().st_size == 50 * MiB


def _peak_rss(pid: int) -> int:
    """The process's peak resident set size (VmHWM), in bytes."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    raise AssertionError("no VmHWM")
