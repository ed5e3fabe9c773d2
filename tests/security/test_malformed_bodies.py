"""Bodies built to crash the server get a 4xx, never a 500 (issue 22, item 6): JSON
nested hundreds of levels deep on every route that takes a body, and ids past 64 bits."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from server_process import ServerProcess


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    proc = ServerProcess(Path(tmp_path_factory.mktemp("bodies")))
    yield proc
    proc.stop()


def body_routes(server: ServerProcess) -> list[str]:
    """Every POST route of the OpenAPI document that takes a JSON body, with ids filled."""
    with server.http() as http:
        doc = http.get("/openapi.json").json()
    paths = []
    for path, ops in doc["paths"].items():
        post = ops.get("post")
        if post and "requestBody" in post:
            paths.append(path.replace("{job_id}", "1").replace("{run_id}", "job-1")
                         .replace("{name}", "x").replace("{worker_id}", "w"))  # fmt: skip
    return paths


@pytest.mark.parametrize("depth", [65, 400, 5000])
def test_deeply_nested_bodies_are_refused_everywhere(server: ServerProcess, depth: int) -> None:
    nested = "[" * depth + "]" * depth
    bodies = [
        nested,
        json.dumps({"command_argv": ["true"], "workdir": "/"})[:-1]
        + f', "config": {{"a": {nested}}}}}',
    ]
    routes = body_routes(server)
    assert "/api/v1/jobs" in routes and len(routes) > 10
    for route in routes:
        for raw in bodies:
            status, answer = server.raw(
                "POST", route, raw.encode(), {"Content-Type": "application/json"}
            )
            assert 400 <= status < 500, (route, status, answer[:200])


def test_shallow_nesting_is_still_accepted(server: ServerProcess) -> None:
    config = {"a": [[{"b": [1, 2]}]] * 3, "s": "[[[[[[" * 30}  # brackets in strings: no depth
    with server.http() as http:
        answer = http.post(
            "/jobs", json={"command_argv": ["true"], "workdir": "/", "config": config}
        )
        assert answer.status_code == 200, answer.text
        job = http.get(f"/jobs/{answer.json()['job_id']}").json()
    assert job["config"] == config


@pytest.mark.parametrize("action", ["started", "heartbeat", "complete", "fail"])
def test_ids_past_64_bits_are_not_found(server: ServerProcess, action: str) -> None:
    status, answer = server.raw(
        "POST",
        f"/api/v1/jobs/9223372036854775808/{action}",
        b'{"worker_id": "w", "exit_code": 0}',
        {"Content-Type": "application/json"},
    )
    assert status == 404, answer
