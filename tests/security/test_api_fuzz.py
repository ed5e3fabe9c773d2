"""A property test that fuzzes every operation of the OpenAPI document, as the server
publishes it, with bodies and parameters generated from its schemas (valid ones, and
arbitrary JSON and bytes that are not): the server must never answer 5xx.

Bounded to keep it fast: a few dozen examples per operation; long-polls and followed
streams are asked not to wait (``wait`` 0, ``follow`` false), which leaves their inputs
fuzzed but their duration short.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import msgspec
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from server_process import ServerProcess

EXAMPLES = 25
JSON = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4)
    ),
    max_leaves=12,
)


#: Path values that exist on the seeded server, so handlers get past their lookups.
KNOWN: dict[str, list[Any]] = {
    "job_id": [1, 2, 3],
    "run_id": ["job-1", "job"],
    "path": ["model.bin", "sub/x"],
    "name": ["lr", "toy"],
    "worker_id": ["w-fuzz", "nobody"],
    "file": ["metrics", "system"],
}
#: Operations every run must get a 2xx from (the worker reports need a held lease; a
#: cancel needs a job still active, and cancel-all may have ended them all before).
MUST_SUCCEED = {
    "submit_job",
    "list_jobs",
    "claim_job",
    "get_job",
    "cancel_all",
    "server_status",
    "queue_state",
    "pause_queue",
    "resume_queue",
    "list_workers",
    "register_worker",
    "list_runs",
    "get_run",
    "run_metrics",
    "run_artifacts",
    "run_artifact",
    "event_stream",
    "job_logs",
    "openapi",
    "health",
}


def from_schema(schema: dict[str, Any], doc: dict[str, Any]) -> st.SearchStrategy[Any]:
    """Values valid for ``schema``: the JSON-schema subset msgspec emits (``$ref``,
    ``anyOf``, typed objects, arrays, bounded strings and numbers)."""
    if "$ref" in schema:
        name = schema["$ref"].rsplit("/", 1)[1]
        return st.deferred(lambda: from_schema(doc["components"]["schemas"][name], doc))
    if "anyOf" in schema:
        return st.one_of([from_schema(s, doc) for s in schema["anyOf"]])
    kind = schema.get("type")
    if kind == "object":
        props = schema.get("properties")
        if props is None:
            keys = st.text(min_size=schema.get("propertyNames", {}).get("minLength", 0), max_size=8)
            values = from_schema(schema.get("additionalProperties", {}), doc)
            return st.dictionaries(keys, values, max_size=3)
        required = set(schema.get("required", ()))
        return st.fixed_dictionaries(
            {k: from_schema(v, doc) for k, v in props.items() if k in required},
            optional={k: from_schema(v, doc) for k, v in props.items() if k not in required},
        )
    if kind == "array":
        return st.lists(
            from_schema(schema.get("items", {}), doc),
            min_size=schema.get("minItems", 0),
            max_size=min(schema.get("maxItems", 4), 4),
        )
    if kind == "string":
        if "pattern" in schema:
            return st.from_regex(schema["pattern"], fullmatch=True)
        if schema.get("format") == "date-time":
            return st.datetimes().map(lambda d: d.isoformat() + "Z")
        lo = schema.get("minLength", 0)
        return st.text(min_size=lo, max_size=max(lo, min(schema.get("maxLength", 12), 12)))
    if kind == "integer":
        return st.integers(schema.get("minimum"), schema.get("maximum"))
    if kind == "number":
        return st.floats(
            schema.get("minimum"), schema.get("maximum"), allow_nan=False, allow_infinity=False
        )
    if kind == "boolean":
        return st.booleans()
    if kind == "null":
        return st.none()
    return JSON


def operations(doc: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    return [
        (method.upper(), path, op)
        for path, item in doc["paths"].items()
        for method, op in item.items()
    ]


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    """One real server for the module, with token ``test-token``."""
    proc = ServerProcess(Path(tmp_path_factory.mktemp("fuzz")))
    yield proc
    proc.stop()


@pytest.fixture(scope="module")
def doc(server: ServerProcess) -> dict[str, Any]:
    """The published document, after seeding a finished job with a run and an artifact."""
    with server.http() as http:
        http.post("/jobs", json={"command_argv": ["true"], "workdir": "/tmp"})
        job = http.post("/jobs/claim", json={"worker_id": "seed"}).json()["job"]
        http.post(f"/jobs/{job['id']}/complete", json={"worker_id": "seed", "exit_code": 0})
        artifacts = server.data_dir / "runs" / job["run_id"] / "artifacts"
        artifacts.mkdir(parents=True)
        (artifacts / "model.bin").write_bytes(b"weights")
        resp = http.get("/openapi.json")
        assert resp.status_code == 200
        return dict(resp.json())


def request_strategy(doc: dict[str, Any], op: dict[str, Any], path: str) -> st.SearchStrategy:
    """(path, query params, body bytes) for one operation."""
    params: dict[str, st.SearchStrategy[Any]] = {}
    for param in op["parameters"]:
        valid = from_schema(param["schema"], doc)
        if param["in"] == "path":
            params[param["name"]] = (
                st.sampled_from(KNOWN[param["name"]])
                | valid
                | st.text(min_size=1, max_size=12).filter(lambda s: s not in (".", ".."))
            )
        else:
            params["?" + param["name"]] = st.none() | valid | st.text(max_size=8)
    fixed = st.fixed_dictionaries(params)
    if "requestBody" in op and "application/json" not in op["requestBody"]["content"]:
        body = st.none() | st.binary(max_size=64)  # a raw upload (octet-stream)
    elif "requestBody" in op:
        schema = op["requestBody"]["content"]["application/json"]["schema"]
        body = (
            from_schema(schema, doc).map(msgspec.json.encode)
            | JSON.map(msgspec.json.encode)
            | st.binary(max_size=40)
        )
    else:
        body = st.none() | st.just(b"{}")
    return st.tuples(fixed, body)


def send(
    http: httpx.Client, method: str, path: str, values: dict[str, Any], body: bytes | None
) -> httpx.Response:
    query: dict[str, Any] = {}
    for name, value in values.items():
        if name.startswith("?"):
            if value is not None:
                query[name[1:]] = str(value).lower() if isinstance(value, bool) else str(value)
        else:
            path = path.replace("{" + name + "}", _quote(str(value)))
    # Keep long-polls and followed streams short; their inputs stay fuzzed.
    if "follow" in query or path.endswith(("/logs", "/events")):
        query["follow"] = "false"
    if path.endswith("/jobs/claim") and body is not None:
        try:
            decoded = msgspec.json.decode(body)
        except msgspec.DecodeError:
            decoded = None
        if isinstance(decoded, dict) and "wait" in decoded:
            decoded["wait"] = 0
            body = msgspec.json.encode(decoded)
    return http.request(
        method, path, params=query, content=body, headers={"Content-Type": "application/json"}
    )


def _quote(value: str) -> str:
    from urllib.parse import quote

    return quote(value, safe="")


def test_no_operation_answers_5xx(server: ServerProcess, doc: dict[str, Any]) -> None:
    ops = operations(doc)
    assert len(ops) >= 20
    succeeded: set[str] = set()
    with httpx.Client(base_url=server.url, headers=server.headers(), timeout=30) as http:
        for method, path, op in ops:
            strategy = request_strategy(doc, op, path)

            @settings(
                max_examples=EXAMPLES,
                deadline=None,
                database=None,
                suppress_health_check=list(HealthCheck),
            )
            @given(case=strategy)
            def check(case: tuple[dict[str, Any], bytes | None]) -> None:
                values, body = case
                resp = send(http, method, path, values, body)  # noqa: B023
                failure = (method, path, values, body, resp.status_code, resp.text[:300])  # noqa: B023
                assert resp.status_code < 500, failure
                if resp.status_code >= 400:
                    assert "detail" in resp.json()
                else:
                    succeeded.add(op["operationId"])  # noqa: B023

            check()
    # The generated requests were valid often enough to reach the handlers' main paths.
    assert succeeded >= MUST_SUCCEED, sorted(MUST_SUCCEED - succeeded)
