"""The wire protocol handshake: a client of another protocol is told which side to
upgrade (426), not handed a confusing 422; every answer names the server's protocol."""

from __future__ import annotations

import httpx
import pytest
from server_process import ServerProcess

import whirr
from whirr import client as client_module
from whirr.client import UpgradeRequired, WhirrClient
from whirr.services.errors import InvalidRequest
from whirr.wire import protocol


def test_every_answer_names_the_servers_protocol(server: ServerProcess) -> None:
    with server.http() as http:
        for path in ("/health", "/status", "/jobs/999999"):
            assert http.get(path).headers[protocol.HEADER] == str(protocol.CURRENT), path
        health = http.get("/health").json()
    assert health == {
        "status": "healthy",
        "version": whirr.__version__,
        "protocol": protocol.CURRENT,
        # What a worker compares with its data dir's server-id: shared files or shipped.
        "server_id": (server.data_dir / "server-id").read_text().strip(),
    }


@pytest.mark.parametrize(
    ("given", "says"),
    [(str(protocol.CURRENT + 1), "upgrade the whirr server"), ("0", "upgrade the worker")],
)
def test_a_client_of_another_protocol_is_told_what_to_upgrade(
    server: ServerProcess, given: str, says: str
) -> None:
    status, body = server.raw(
        "POST",
        "/api/v1/jobs/claim",
        b'{"worker_id": "w-new", "brand_new_field": 1}',
        {"Content-Type": "application/json", protocol.HEADER: given},
    )
    assert status == 426 and says in body.decode()


def test_no_header_is_the_original_protocol(server: ServerProcess) -> None:
    answer = httpx.get(f"{server.url}/api/v1/status", headers=server.headers(), timeout=10)
    assert answer.status_code == 200  # what whirr 0.5.3's client sends


def test_a_malformed_header_is_a_clear_422(server: ServerProcess) -> None:
    status, body = server.raw("GET", "/api/v1/status", headers={protocol.HEADER: "two"})
    assert status == 422 and protocol.HEADER.encode() in body


def test_the_client_raises_upgrade_required(
    server: ServerProcess, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(protocol, "CURRENT", protocol.CURRENT + 1)
    with WhirrClient(server.url, token=server.token) as c, pytest.raises(UpgradeRequired) as err:
        c.status()
    assert "upgrade the whirr server" in str(err.value)


def test_an_older_servers_422_says_to_upgrade_it() -> None:
    answer = httpx.Response(
        422,
        json={"detail": "unknown field free_slots"},
        headers={protocol.HEADER: "1"},
        request=httpx.Request("POST", "http://x/api/v1/jobs/claim"),
    )
    error = client_module._error(answer, InvalidRequest)
    assert isinstance(error, InvalidRequest)
    assert "upgrade the whirr server" in str(error) and "free_slots" in str(error)


def test_an_older_server_without_a_route_says_to_upgrade_it() -> None:
    request = httpx.Request("GET", "http://x/api/v1/sweeps/lr/report")
    missing = httpx.Response(
        404, json={"detail": "Requested URL /api/v1/sweeps/lr/report not found"}, request=request
    )
    assert "upgrade the whirr server" in str(client_module._error(missing, InvalidRequest))
    no_job = httpx.Response(404, json={"detail": "no job #5"}, request=request)
    assert str(client_module._error(no_job, InvalidRequest)) == "no job #5"
