"""Web pages cannot drive the API (issue 22, item 2).

A page on any site can make its visitor's browser send "simple" requests to
``http://127.0.0.1:PORT`` without a CORS preflight: POSTs with a ``text/plain``, form or
untyped body, and any request under a DNS name that the page's author points at
127.0.0.1 (DNS rebinding). Against ``whirr server --no-auth`` such a request queued a
job that a worker then ran. These tests send what such a browser would send, to real
servers: without auth, with a token, and with a token and ``--public-url``.
"""

from __future__ import annotations

import http.client
import json
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from server_process import WHIRR, ServerProcess, free_port

from whirr.web.origin import host_allowed, normalize_public_url, split_host

JOB = json.dumps({"command_argv": ["touch", "/tmp/whirr-pwned"], "workdir": "/tmp"}).encode()
PUBLIC_URL = "https://whirr.example.com"


@pytest.fixture(scope="module")
def open_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    """``whirr server --no-auth`` on loopback."""
    proc = ServerProcess(Path(tmp_path_factory.mktemp("no-auth")), token=None)
    yield proc
    proc.stop()


@pytest.fixture(scope="module")
def token_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    """``whirr server --token test-token``."""
    proc = ServerProcess(Path(tmp_path_factory.mktemp("token")))
    yield proc
    proc.stop()


@pytest.fixture(scope="module")
def public_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    """``whirr server --token test-token --public-url https://whirr.example.com/``."""
    proc = ServerProcess(
        Path(tmp_path_factory.mktemp("public")), args=("--public-url", PUBLIC_URL + "/")
    )
    yield proc
    proc.stop()


def jobs(server: ServerProcess) -> list[dict[str, object]]:
    status, body = server.raw("GET", "/api/v1/jobs?status=all")
    assert status == 200, body
    found: list[dict[str, object]] = json.loads(body)["jobs"]
    return found


def submit(server: ServerProcess) -> int:
    status, body = server.raw(
        "POST", "/api/v1/jobs", body=JOB, headers={"Content-Type": "application/json"}
    )
    assert status == 200, body
    return int(json.loads(body)["job_id"])


def access_control(headers: list[tuple[str, str]]) -> list[str]:
    return [k for k, _ in headers if k.lower().startswith("access-control-")]


# -- bodies a page may send without asking first ------------------------------------------

SIMPLE_TYPES = [
    "text/plain",
    "text/plain;charset=UTF-8",  # what fetch() sets for a string body
    " Text/Plain ; charset=utf-8",
    "application/x-www-form-urlencoded",
    "multipart/form-data; boundary=----whirr",
    None,  # a Blob body of no type: the browser sends no Content-Type at all
]


def test_a_text_plain_job_from_a_page_is_refused_and_nothing_is_queued(
    open_server: ServerProcess,
) -> None:
    # What fetch('http://127.0.0.1:PORT/api/v1/jobs', {method: 'POST', mode: 'no-cors',
    # body: '{...}'}) sends, less the Origin header (refused on its own, tested below).
    status, body = open_server.raw(
        "POST", "/api/v1/jobs", body=JOB, headers={"Content-Type": "text/plain;charset=UTF-8"}
    )
    assert status == 415
    assert "application/json" in json.loads(body)["detail"]
    assert jobs(open_server) == []


@pytest.mark.parametrize("content_type", SIMPLE_TYPES)
@pytest.mark.parametrize("which", ["open_server", "token_server"])
def test_bodies_of_simple_or_no_type_are_refused_with_or_without_auth(
    request: pytest.FixtureRequest, which: str, content_type: str | None
) -> None:
    server: ServerProcess = request.getfixturevalue(which)
    before = len(jobs(server))
    headers = {} if content_type is None else {"Content-Type": content_type}
    for path in ("/api/v1/jobs", "/api/v1/workers/register", "/api/v1/jobs/claim"):
        status, body = server.raw("POST", path, body=JOB, headers=headers)
        assert status == 415, (path, body)
        detail = json.loads(body)["detail"]
        assert "Content-Type: application/json" in detail
    assert len(jobs(server)) == before


@pytest.mark.parametrize(
    "content_type", ["application/json", "application/json; charset=utf-8", "APPLICATION/JSON"]
)
def test_json_bodies_still_work(open_server: ServerProcess, content_type: str) -> None:
    status, body = open_server.raw(
        "POST", "/api/v1/jobs", body=JOB, headers={"Content-Type": content_type}
    )
    assert status == 200, body
    job_id = json.loads(body)["job_id"]
    assert any(job["id"] == job_id for job in jobs(open_server))


def test_posts_without_a_body_need_no_content_type(open_server: ServerProcess) -> None:
    job_id = submit(open_server)
    status, body = open_server.raw("POST", f"/api/v1/jobs/{job_id}/cancel")
    assert status == 200, body
    assert json.loads(body)["status"] == "cancelled"


# -- Host: DNS rebinding -----------------------------------------------------------------


@pytest.mark.parametrize("path", ["/api/v1/status", "/api/v1/health", "/api/v1/jobs"])
def test_a_foreign_host_is_refused_without_auth(open_server: ServerProcess, path: str) -> None:
    status, body = open_server.raw(
        "GET", path, headers={"Host": f"evil.example:{open_server.port}"}
    )
    assert status == 403
    assert "localhost" in json.loads(body)["detail"]


def test_a_rebinding_page_cannot_queue_a_job(open_server: ServerProcess) -> None:
    before = len(jobs(open_server))
    # Same-origin to the browser (evil.example now resolves to 127.0.0.1): JSON allowed.
    headers = {"Host": f"evil.example:{open_server.port}", "Content-Type": "application/json"}
    status, _ = open_server.raw("POST", "/api/v1/jobs", body=JOB, headers=headers)
    assert status == 403
    assert len(jobs(open_server)) == before


@pytest.mark.parametrize("host", ["127.0.0.1:{port}", "localhost:{port}", "[::1]:{port}"])
def test_loopback_hosts_are_served_without_auth(open_server: ServerProcess, host: str) -> None:
    status, body = open_server.raw(
        "GET", "/api/v1/status", headers={"Host": host.format(port=open_server.port)}
    )
    assert status == 200, body


def test_with_a_token_any_host_is_served(token_server: ServerProcess) -> None:
    # A rebinding page has no token; behind a proxy or a DNS name the server must answer.
    status, body = token_server.raw(
        "GET", "/api/v1/status", headers={"Host": f"evil.example:{token_server.port}"}
    )
    assert status == 200, body


@pytest.mark.parametrize(
    ("host", "expected"),
    [
        ("whirr.example.com", 200),
        ("WHIRR.example.com:443", 200),
        ("127.0.0.1:{port}", 200),
        ("localhost:{port}", 200),
        ("evil.example", 403),
        ("whirr.example.com:8080", 403),
        ("whirr.example.com.evil.example", 403),
    ],
)
def test_with_a_public_url_only_its_host_and_loopback_are_served(
    public_server: ServerProcess, host: str, expected: int
) -> None:
    status, body = public_server.raw(
        "GET", "/api/v1/status", headers={"Host": host.format(port=public_server.port)}
    )
    assert status == expected, body
    if expected == 403:
        assert PUBLIC_URL in json.loads(body)["detail"]


def test_the_dashboard_answers_to_the_public_url(public_server: ServerProcess) -> None:
    pytest.importorskip("numpy")  # the dashboard's extra
    page = "/static/dashboard.css"
    status, _ = public_server.raw("GET", page, headers={"Host": "whirr.example.com"})
    assert status == 200
    status, _ = public_server.raw("GET", page, headers={"Host": "evil.example"})
    assert status == 403


# -- Origin and Sec-Fetch-Site ------------------------------------------------------------


@pytest.mark.parametrize(
    "headers",
    [
        {"Origin": "http://evil.example"},
        {"Origin": "null"},  # a sandboxed iframe or a file:// page
        {"Origin": "http://127.0.0.1:1"},  # another local web app, another port
        {"Sec-Fetch-Site": "cross-site"},
        {"Sec-Fetch-Site": "same-site"},
    ],
)
def test_a_page_of_another_origin_cannot_post_without_auth(
    open_server: ServerProcess, headers: dict[str, str]
) -> None:
    job_id = submit(open_server)
    # A body-less POST is a simple request whatever the Content-Type rule says.
    status, body = open_server.raw("POST", f"/api/v1/jobs/{job_id}/cancel", headers=headers)
    assert status == 403
    assert "request refused" in json.loads(body)["detail"]
    status, _ = open_server.raw(
        "POST", "/api/v1/jobs", body=JOB, headers={**headers, "Content-Type": "application/json"}
    )
    assert status == 403
    status, body = open_server.raw("GET", f"/api/v1/jobs/{job_id}")
    assert json.loads(body)["status"] == "queued"


def test_same_origin_and_typed_urls_are_served_without_auth(open_server: ServerProcess) -> None:
    for headers in (
        {"Origin": f"http://127.0.0.1:{open_server.port}", "Sec-Fetch-Site": "same-origin"},
        {"Sec-Fetch-Site": "none"},
    ):
        status, body = open_server.raw("GET", "/api/v1/status", headers=headers)
        assert status == 200, body


# -- no CORS allowance, ever --------------------------------------------------------------


@pytest.mark.parametrize("which", ["open_server", "token_server"])
@pytest.mark.parametrize("path", ["/api/v1/jobs", "/api/v1/status", "/api/v1/jobs/1/cancel"])
def test_preflights_get_no_cors_allowance(
    request: pytest.FixtureRequest, which: str, path: str
) -> None:
    server: ServerProcess = request.getfixturevalue(which)
    conn_headers = {
        "Origin": "http://evil.example",
        "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "content-type, authorization",
    }
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=30)
    try:
        conn.request("OPTIONS", path, headers=conn_headers)
        resp = conn.getresponse()
        resp.read()
        assert not 200 <= resp.status < 300
        assert access_control(resp.getheaders()) == []
        # Nor on an ordinary answer to a page of another origin.
        conn.request("GET", "/api/v1/health", headers={"Origin": "http://evil.example"})
        resp = conn.getresponse()
        resp.read()
        assert access_control(resp.getheaders()) == []
    finally:
        conn.close()


# -- the --public-url option and the header helpers --------------------------------------


def test_no_auth_refuses_a_public_url_off_loopback(tmp_path: Path) -> None:
    def server(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [*WHIRR, "server", "-p", str(free_port()), "-d", str(tmp_path), *args],
            capture_output=True,
            text=True,
            timeout=60,
        )

    refused = server("--no-auth", "--public-url", PUBLIC_URL)
    assert refused.returncode == 2
    assert "refusing --no-auth with --public-url" in refused.stderr
    bad = server("--token", "t", "--public-url", "whirr.example.com")
    assert bad.returncode == 2
    assert "--public-url" in bad.stderr and "http://" in bad.stderr
    path = server("--token", "t", "--public-url", "https://whirr.example.com/api/v1")
    assert path.returncode == 2


def test_header_helpers() -> None:
    assert split_host("[::1]:8265") == ("::1", 8265)
    assert split_host("Example.COM.") == ("example.com", None)
    assert split_host("::1") == ("::1", None)
    assert normalize_public_url("HTTPS://Whirr.Example.com/") == "https://whirr.example.com"
    with pytest.raises(ValueError):
        normalize_public_url("ftp://whirr.example.com")
    with pytest.raises(ValueError):
        normalize_public_url("http://whirr.example.com:99999")
    assert host_allowed("127.0.0.2:1") and host_allowed("a.localhost") and host_allowed("[::1]")
    assert not host_allowed("evil.example") and not host_allowed("")
    assert host_allowed("whirr.example.com", PUBLIC_URL)
    assert host_allowed("whirr.example.com:443", PUBLIC_URL)
    assert not host_allowed("whirr.example.com:80", PUBLIC_URL)
    assert host_allowed("h:8080", "http://h:8080") and not host_allowed("h", "http://h:8080")
