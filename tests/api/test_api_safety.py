"""Auth, malformed input and path safety against a real server: every bad request is a 4xx
with ``{"detail": ...}``, nothing outside the data dir is ever served."""

from __future__ import annotations

import http.client
import json
import os

import msgspec
import pytest
from server_process import ServerProcess

from whirr.api.openapi import openapi_path
from whirr.api.routes import ROUTES
from whirr.client import AuthError, WhirrClient


def concrete(path: str) -> str:
    return path.replace("{job_id}", "1").replace("{run_id}", "job-1").replace("{path}", "x")


def test_every_route_but_health_needs_the_token(server: ServerProcess) -> None:
    for route in ROUTES:
        path = concrete(openapi_path(route.path))
        status, body = server.raw(route.method, path, headers={"Authorization": ""})
        if route.public:
            assert status == 200, path
            continue
        assert status == 401, path
        assert "token" in json.loads(body)["detail"]
        wrong, _ = server.raw(route.method, path, headers={"Authorization": "Bearer nope"})
        assert wrong == 403, path
        # Basic auth carries the token as its password (the original client puts it in
        # the URL): "x:y" is a wrong token, a header that does not decode none at all.
        basic, _ = server.raw(route.method, path, headers={"Authorization": "Basic eDp5"})
        assert basic == 403, path
        garbled, _ = server.raw(route.method, path, headers={"Authorization": "Basic !!"})
        assert garbled == 401, path


def test_the_client_reports_a_missing_token_clearly(server: ServerProcess) -> None:
    with WhirrClient(server.url, token="") as anonymous, pytest.raises(AuthError) as info:
        anonymous.status()
    assert "WHIRR_TOKEN" in str(info.value)


MALFORMED = [
    ("POST", "/api/v1/jobs", b"{not json", 400),
    ("POST", "/api/v1/jobs", b"", 422),
    ("POST", "/api/v1/jobs", b"[]", 422),
    ("POST", "/api/v1/jobs", b'{"command_argv": "echo", "workdir": "/tmp"}', 422),
    ("POST", "/api/v1/jobs", b'{"command_argv": [], "workdir": "/tmp"}', 422),
    ("POST", "/api/v1/jobs", b'{"command_argv": [""], "workdir": "/tmp"}', 422),
    ("POST", "/api/v1/jobs", b'{"command_argv": ["a\\u0000b"], "workdir": "/tmp"}', 422),
    ("POST", "/api/v1/jobs", b'{"command_argv": ["x"], "workdir": "/tmp", "priority": 1e999}', 422),
    ("POST", "/api/v1/jobs", b'{"command_argv": ["x"], "workdir": "/tmp", "config": [1]}', 422),
    ("POST", "/api/v1/jobs", b'{"command_argv": ["x"], "workdir": "/tmp", "env": {"A": 1}}', 422),
    ("POST", "/api/v1/jobs", b'{"command_argv": ["x"], "workdir": "\\ud800"}', 400),
    ("POST", "/api/v1/jobs/claim", b'{"worker_id": "w", "lease_seconds": 5}', 422),
    ("POST", "/api/v1/jobs/claim", b'{"worker_id": "w", "wait": 61}', 422),
    ("POST", "/api/v1/jobs/claim", b'{"worker_id": ""}', 422),
    ("POST", "/api/v1/jobs/claim", b'{"worker_id": "w", "gpu_id": -1}', 422),
    ("POST", "/api/v1/jobs/1/heartbeat", b'{"worker_id": "w", "attempt": 0}', 422),
    ("POST", "/api/v1/jobs/1/complete", b'{"worker_id": "w"}', 422),
    ("POST", "/api/v1/jobs/1/complete", b'{"worker_id": "w", "exit_code": 99999999999}', 422),
    ("POST", "/api/v1/jobs/99999999999999999999999/cancel", b"", 404),
    ("POST", "/api/v1/jobs/-5/cancel", b"", 404),
    ("GET", "/api/v1/jobs?limit=abc", None, 422),
    ("GET", "/api/v1/jobs?limit=0", None, 422),
    ("GET", "/api/v1/jobs?status=bogus", None, 422),
    ("GET", "/api/v1/jobs/1/logs?follow=maybe", None, 422),
    ("GET", "/api/v1/events?after=-1", None, 422),
    ("GET", "/api/v1/nowhere", None, 404),
    ("DELETE", "/api/v1/jobs", None, 405),
]


@pytest.mark.parametrize(("method", "path", "body", "expected"), MALFORMED)
def test_malformed_requests_get_a_4xx_with_a_detail(
    server: ServerProcess, method: str, path: str, body: bytes | None, expected: int
) -> None:
    status, answer = server.raw(
        method, path, body=body, headers={"Content-Type": "application/json"}
    )
    assert status == expected, answer
    assert isinstance(json.loads(answer)["detail"], str)


def test_oversized_bodies_are_refused(server: ServerProcess) -> None:
    big = msgspec.json.encode(
        {"command_argv": ["x"], "workdir": "/tmp", "config": {"blob": "a" * 2_000_000}}
    )
    # Only the headers go out: the server refuses on the declared length, before any body.
    # Sending the body too raced the refusal (the server closes the connection while 2 MB
    # are still in flight: a broken pipe, or a reset that can drop the 413 itself).
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=30)
    try:
        conn.putrequest("POST", "/api/v1/jobs")
        for name, value in {**server.headers(), "Content-Type": "application/json"}.items():
            conn.putheader(name, value)
        conn.putheader("Content-Length", str(len(big)))
        conn.endheaders()
        status = conn.getresponse().status
    finally:
        conn.close()
    assert status == 413


@pytest.fixture
def finished_run(server: ServerProcess, client: WhirrClient) -> str:
    """A completed job's run with a metrics file and artifacts, and a secret beside the data
    dir that no request may reach."""
    client.cancel_all_queued()
    job_id = client.submit(["true"], "/tmp").job_id
    job = client.claim("w-files")
    assert job is not None and job.id == job_id
    client.started(job_id, "w-files", job.attempt, 1)
    client.complete(job_id, "w-files", job.attempt, 0)
    run_dir = server.data_dir / "runs" / job.run_id
    (run_dir / "artifacts" / "sub").mkdir(parents=True)
    (run_dir / "artifacts" / "model.bin").write_bytes(b"\x00weights")
    (run_dir / "artifacts" / "sub" / "notes.txt").write_text("hello")
    (run_dir / "metrics.jsonl").write_text(
        '{"_idx":0,"_timestamp":"2025-01-01T00:00:00Z","step":0,"loss":1.0}\n'
        '{"_idx":1,"_timestamp":"2025-01-01T00:00:01Z","step":1,"loss":0.5}\n'
        '{"_idx":2,"_timest'
    )  # a torn last line, still being written
    (server.root / "secret.txt").write_text("top secret")
    os.symlink(server.root / "secret.txt", run_dir / "artifacts" / "link.txt")
    return job.run_id


def test_runs_metrics_and_artifacts(client: WhirrClient, finished_run: str) -> None:
    rows = client.metrics(finished_run)
    assert [r["loss"] for r in rows] == [1.0, 0.5]
    assert [r["loss"] for r in client.metrics(finished_run, since=1)] == [0.5]
    paths = {a.path: a.size for a in client.artifacts(finished_run)}
    assert paths == {"model.bin": 8, "sub/notes.txt": 5}  # the symlink is not listed
    assert client.read_artifact(finished_run, "model.bin") == b"\x00weights"
    assert client.read_artifact(finished_run, "sub/notes.txt") == b"hello"


TRAVERSALS = [
    "/api/v1/runs/../token",
    "/api/v1/runs/..%2F..%2Ftoken",
    "/api/v1/runs/%2e%2e/artifacts",
    "/api/v1/runs/{run}/artifacts/../../../token",
    "/api/v1/runs/{run}/artifacts/..%2F..%2F..%2Ftoken",
    "/api/v1/runs/{run}/artifacts/%2e%2e/%2e%2e/%2e%2e/secret.txt",
    "/api/v1/runs/{run}/artifacts/%2Fetc%2Fpasswd",
    "/api/v1/runs/{run}/artifacts//etc/passwd",
    "/api/v1/runs/{run}/artifacts/link.txt",
    "/api/v1/runs/{run}/artifacts/sub/..%2F..%2F..%2F..%2Fsecret.txt",
    "/api/v1/runs/{run}/metrics?x=/../../token",
]


@pytest.mark.parametrize("template", TRAVERSALS)
def test_path_traversal_is_rejected(
    server: ServerProcess, finished_run: str, template: str
) -> None:
    status, body = server.raw("GET", template.replace("{run}", finished_run))
    assert b"top secret" not in body and server.token.encode() not in body  # type: ignore[union-attr]
    assert b"root:" not in body
    if "metrics" not in template:
        assert 400 <= status < 500, (template, status, body)
