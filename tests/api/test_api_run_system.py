"""``GET /runs/{id}/system``: a run's system samples over HTTP, with a line cursor, the
token and the same path checks as every other run file route."""

from __future__ import annotations

import pytest
from server_process import ServerProcess

from whirr.api.openapi import openapi_path
from whirr.api.routes import ROUTES
from whirr.client import WhirrClient
from whirr.run import SkippedLine
from whirr.services.errors import NotFound


def started_run(client: WhirrClient) -> str:
    """A run a worker has started (no files yet)."""
    client.cancel_all_queued()
    job_id = client.submit(["true"], "/tmp").job_id
    job = client.claim("w-system")
    assert job is not None and job.id == job_id
    client.started(job_id, "w-system", job.attempt, 1)
    return job.run_id


@pytest.fixture
def sampled_run(server: ServerProcess, client: WhirrClient) -> str:
    """A run whose system.jsonl has three samples, a garbled line and a torn last line."""
    run_id = started_run(client)
    run_dir = server.data_dir / "runs" / run_id
    run_dir.mkdir(parents=True, exist_ok=True)
    (run_dir / "system.jsonl").write_text(
        '{"_timestamp":"2025-01-01T00:00:00Z","cpu_percent":10.0}\n'
        "garbled\n"
        '{"_timestamp":"2025-01-01T00:00:10Z","cpu_percent":20.0,"gpu0_util":50}\n'
        '{"_timestamp":"2025-01-01T00:00:20Z","cpu_percent":30.0}\n'
        '{"_timestamp":"2025-01-01T00:00:3'
    )  # the sampler is mid-write
    return run_id


def test_samples_come_with_a_cursor_that_continues_after_them(
    client: WhirrClient, sampled_run: str
) -> None:
    with pytest.warns(SkippedLine, match="line 2 is not valid JSON"):
        first = client.system_samples(sampled_run)
    assert [s["cpu_percent"] for s in first.samples] == [10.0, 20.0, 30.0]
    assert first.count == 3 and first.next == 4  # the garbled line counts, the torn one not
    assert first.samples[1]["gpu0_util"] == 50
    later = client.system_samples(sampled_run, since=2)  # past the garbled line: no warning
    assert [s["cpu_percent"] for s in later.samples] == [20.0, 30.0] and later.next == 4
    assert client.system_samples(sampled_run, since=first.next).samples == []


def test_a_run_without_samples_and_an_unknown_run(client: WhirrClient) -> None:
    run_id = started_run(client)
    empty = client.system_samples(run_id)
    assert empty.samples == [] and empty.next == 0
    with pytest.raises(NotFound):
        client.system_samples("no-such-run")


def test_limit_pages_and_the_route_is_documented(
    server: ServerProcess, client: WhirrClient, sampled_run: str
) -> None:
    status, body = server.raw("GET", f"/api/v1/runs/{sampled_run}/system?limit=1")
    assert status == 200 and b'"count":1' in body and b'"next":1' in body
    assert b'"warnings":null' in body  # the garbled line 2 was not read
    assert server.raw("GET", f"/api/v1/runs/{sampled_run}/system?limit=0")[0] == 422
    route = next(r for r in ROUTES if r.name == "run_system")
    assert openapi_path(route.path) == "/api/v1/runs/{run_id}/system"
    op = client.openapi()["paths"]["/api/v1/runs/{run_id}/system"]["get"]
    assert {p["name"] for p in op["parameters"]} == {"run_id", "since", "limit"}


@pytest.mark.parametrize(
    "path",
    [
        "/api/v1/runs/../token/system",
        "/api/v1/runs/..%2F..%2Ftoken/system",
        "/api/v1/runs/%2e%2e/system",
        "/api/v1/runs/{run}/system/../../../token",
    ],
)
def test_the_token_and_path_checks_hold(server: ServerProcess, sampled_run: str, path: str) -> None:
    url = path.replace("{run}", sampled_run)
    status, body = server.raw("GET", url)
    assert 400 <= status < 500 and server.token.encode() not in body  # type: ignore[union-attr]
    good = f"/api/v1/runs/{sampled_run}/system"
    assert server.raw("GET", good, headers={"Authorization": ""})[0] == 401
    assert server.raw("GET", good, headers={"Authorization": "Bearer nope"})[0] == 403


def test_damaged_lines_are_passed_on_by_the_metrics_system_and_tail_routes(
    server: ServerProcess, client: WhirrClient, sampled_run: str
) -> None:
    (server.data_dir / "runs" / sampled_run / "metrics.jsonl").write_text(
        '{"_idx":0,"a":1}\n{"_idx":1,"a": garbage\n{"_idx":2,"a":3}\n'
    )
    status, body = server.raw("GET", f"/api/v1/runs/{sampled_run}/metrics")
    assert status == 200, body
    assert b'"count":2' in body and b"line 2 is not valid JSON" in body
    status, body = server.raw("GET", f"/api/v1/runs/{sampled_run}/system")
    assert status == 200 and b"system.jsonl of run" in body and b"line 2 is" in body
    status, body = server.raw("GET", f"/api/v1/runs/{sampled_run}/tail?file=metrics&rows=5")
    assert status == 200 and b'"count":2' in body and b"line 2 is not valid JSON" in body
    with pytest.warns(SkippedLine, match="metrics.jsonl of run .*line 2 "):
        assert [r["a"] for r in client.metrics(sampled_run)] == [1, 3]
    with pytest.warns(SkippedLine, match="line 2 "):
        assert [r["a"] for r in client.tail(sampled_run, "metrics", 5)] == [1, 3]
    schema = client.openapi()["components"]["schemas"]["MetricsResponse"]
    assert "warnings" in schema["properties"] and "warnings" not in schema["required"]
