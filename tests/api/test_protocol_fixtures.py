"""The protocol fixtures shared with the Rust worker (``tests/fixtures/protocol/``) decode
with the server's msgspec schemas, and the OpenAPI document describes every route with
those same schemas: Python, Rust and the document cannot drift apart silently."""

from __future__ import annotations

import json
from pathlib import Path

import msgspec
import pytest

from whirr.api.openapi import document, openapi_path
from whirr.api.routes import ROUTES
from whirr.client import _shipping_conflict
from whirr.services.errors import OffsetGap, StaleAttempt
from whirr.wire import schemas
from whirr.wire.artifact_uploads import CompleteArtifactRequest, StoredArtifact
from whirr.wire.run_events import RunStartRequest
from whirr.wire.shipping import FinalFilesRequest, RunFiles, UploadAnswer

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "protocol"
MANIFEST = json.loads((FIXTURES / "manifest.json").read_text())
#: Rust names the ``started`` answer ``Ack``; the server sends its subset ``{success}``.
#: Rust reads every upload's answer (run files, artifacts, resume sizes) as
#: ``SizeResponse`` ``{size}``. ``RunStartRequest`` (a direct run), ``RunFiles`` and
#: ``StoredArtifact`` are Python's only: the Rust worker neither sends nor reads them.
SERVER_TYPES = {
    **schemas.TYPES,
    "SizeResponse": UploadAnswer,
    "RunStartRequest": RunStartRequest,
    "RunFiles": RunFiles,
    "FinalFilesRequest": FinalFilesRequest,
    "SizeWarningRequest": schemas.SizeWarningRequest,
    "CompleteArtifactRequest": CompleteArtifactRequest,
    "StoredArtifact": StoredArtifact,
}


def test_the_manifest_lists_every_fixture_file() -> None:
    listed = {entry["file"] for entry in MANIFEST}
    on_disk = {p.name for p in FIXTURES.glob("*.json")} - {"manifest.json"}
    assert listed == on_disk


@pytest.mark.parametrize("entry", MANIFEST, ids=[e["file"] for e in MANIFEST])
def test_every_fixture_decodes_with_the_server_schemas(entry: dict[str, object]) -> None:
    kind = SERVER_TYPES[str(entry["type"])]
    raw = (FIXTURES / str(entry["file"])).read_bytes()
    decoded = msgspec.json.decode(raw, type=kind)
    if entry["direction"] == "request":
        # Every key a worker sends is one the server reads (none silently ignored).
        sent = set(json.loads(raw))
        assert sent <= set(kind.__struct_fields__), sent - set(kind.__struct_fields__)
    else:
        # Every key the server would send for this value round-trips.
        again = msgspec.json.decode(msgspec.json.encode(decoded), type=kind)
        assert again == decoded


@pytest.mark.parametrize("entry", MANIFEST, ids=[e["file"] for e in MANIFEST])
def test_every_fixture_route_exists_with_that_body(entry: dict[str, object]) -> None:
    routes = {(r.method, openapi_path(r.path).replace("{job_id}", "{id}")): r for r in ROUTES}
    route = routes[(str(entry["method"]), str(entry["path"]))]
    if entry["direction"] == "request":
        assert route.body is SERVER_TYPES[str(entry["type"])]


def test_the_openapi_document_covers_every_route_and_schema() -> None:
    doc = document(ROUTES)
    assert doc["openapi"].startswith("3.")
    for route in ROUTES:
        op = doc["paths"][openapi_path(route.path)][route.method.lower()]
        assert op["operationId"] == route.name
        if route.body is not None:
            ref = op["requestBody"]["content"]["application/json"]["schema"]["$ref"]
            assert ref.endswith("/" + route.body.__name__)
    components = doc["components"]["schemas"]
    for name in ("SubmitRequest", "ClaimRequest", "Job", "HeartbeatResponse", "ErrorBody"):
        assert name in components
    claim = components["ClaimRequest"]["properties"]
    assert (claim["lease_seconds"]["minimum"], claim["lease_seconds"]["maximum"]) == (10, 600)
    assert claim["wait"]["maximum"] == 60


def test_the_shipping_fixtures_say_what_the_server_sends() -> None:
    """The started and direct-run requests that ship, the files' state, and the two 409s
    of an upload as the Python client reads them (``StaleAttempt``, ``OffsetGap``)."""
    started = msgspec.json.decode(
        (FIXTURES / "jobs_started.request.shipped.json").read_bytes(), type=schemas.StartedRequest
    )
    assert (started.files, started.run_dir) == ("shipped", "/scratch/whirr/runs/job-42")
    direct = msgspec.json.decode(
        (FIXTURES / "runs_start.request.shipped.json").read_bytes(), type=RunStartRequest
    )
    assert direct.files == "shipped" and direct.run_dir
    files = msgspec.json.decode((FIXTURES / "runs_files.response.json").read_bytes(), type=RunFiles)
    assert files.files["metrics.jsonl"].state == "missing_tail"
    stale = (FIXTURES / "runs_files_upload.response.409.stale.json").read_bytes()
    gap = (FIXTURES / "runs_files_upload.response.409.gap.json").read_bytes()
    read_stale, read_gap = _shipping_conflict(stale, "x"), _shipping_conflict(gap, "x")
    assert isinstance(read_stale, StaleAttempt) and read_stale.attempt == 2
    assert isinstance(read_gap, OffsetGap) and read_gap.size == 1024
