"""The dashboard inside ``whirr server`` (behind its token) and ``whirr dashboard --server``
(a remote server read through the HTTP API)."""

from __future__ import annotations

import os
import re
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest
from server_process import WHIRR, ServerProcess, free_port

from dashboard.demo import write_metrics
from dashboard.process import DashboardProcess
from whirr.client import WhirrClient


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    proc = ServerProcess(Path(tmp_path_factory.mktemp("dash-server")))
    with WhirrClient(proc.url, token=proc.token) as c:
        c.submit(["true"], "/", name="first <i>job</i>", tags=["t1"])
        c.submit(["true"], "/", name="second")
    yield proc
    proc.stop()


@contextmanager
def signed_in(server: ServerProcess) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.url, timeout=30) as client:
        resp = client.post("/login", data={"token": server.token, "next": "/queue"})
        assert resp.status_code == 303 and resp.headers["location"] == "/queue"
        yield client


def test_pages_redirect_to_sign_in_and_json_needs_a_session(server: ServerProcess) -> None:
    with httpx.Client(base_url=server.url, timeout=30) as c:
        page = c.get("/runs?status=failed")
        assert page.status_code == 302
        assert page.headers["location"] == "/login?next=%2Fruns%3Fstatus%3Dfailed"
        login = c.get("/login")
        assert login.status_code == 200 and 'type="password"' in login.text
        assert c.get("/ui/overview").status_code == 401
        assert c.get("/static/dashboard.css").status_code == 200  # the sign-in page needs it


def test_a_wrong_token_is_refused_and_the_right_one_sets_a_safe_cookie(
    server: ServerProcess,
) -> None:
    with httpx.Client(base_url=server.url, timeout=30) as c:
        wrong = c.post("/login", data={"token": "nope"})
        assert wrong.status_code == 401 and "not the token" in wrong.text
        ok = c.post("/login", data={"token": server.token, "next": "https://evil.example/"})
        assert ok.status_code == 303 and ok.headers["location"] == "/"
        cookie = ok.headers["set-cookie"]
        assert "HttpOnly" in cookie and "SameSite=Strict" in cookie
        assert "Secure" not in cookie  # plain http on loopback, and no https public URL
        assert server.token not in cookie  # the cookie is derived from the token, not it
        overview = c.get("/ui/overview")
        assert overview.status_code == 200 and overview.json()["status"]["queued"] == 2


@pytest.mark.parametrize(
    "public_url, secure",
    [("https://whirr.example.com", True), ("http://whirr.example.com:8080", False)],
)
def test_the_session_cookie_is_secure_behind_an_https_public_url(
    tmp_path: Path, public_url: str, secure: bool
) -> None:
    # A TLS proxy forwards plain HTTP: the server sees http, the browser https. The public
    # URL says which, for the requests through the proxy and on loopback alike.
    proc = ServerProcess(tmp_path, args=("--public-url", public_url))
    try:
        for base, host in ((proc.url, None), (proc.url, urlsplit(public_url).netloc)):
            headers = {"Host": host} if host else {}
            with httpx.Client(base_url=base, timeout=30, headers=headers) as c:
                ok = c.post("/login", data={"token": proc.token})
                assert ok.status_code == 303
                attributes = [a.strip() for a in ok.headers["set-cookie"].split(";")]
                assert ("Secure" in attributes) is secure, attributes
                assert "HttpOnly" in attributes and "SameSite=Strict" in attributes
    finally:
        proc.stop()


def test_a_stale_or_odd_sign_out_form_is_refused(server: ServerProcess) -> None:
    with signed_in(server) as c:
        for csrf in ("", "0" * 64, "é" * 64):
            out = c.post("/logout", data={"csrf": csrf})
            assert out.status_code == 403 and "stale sign-out form" in out.text
            assert "set-cookie" not in out.headers
        assert c.get("/ui/overview").status_code == 200  # still signed in


def test_a_bearer_token_also_opens_the_json(server: ServerProcess) -> None:
    with httpx.Client(base_url=server.url, timeout=30, headers=server.headers()) as c:
        assert c.get("/ui/queue").status_code == 200
    # ... and the API itself still wants its bearer token, a session cookie is not enough.
    with signed_in(server) as c:
        assert c.get("/api/v1/status").status_code == 401


def test_cancel_through_the_server_dashboard_and_sign_out(server: ServerProcess) -> None:
    with signed_in(server) as c:
        html = c.get("/queue").text
        assert "Sign out" in html
        token = re.search(r'name="csrf-token" content="([0-9a-f]+)"', html).group(1)  # type: ignore[union-attr]
        jobs = c.get("/ui/queue").json()["active"]
        first = next(j for j in jobs if j["name"] == "first <i>job</i>")
        assert c.post(f"/ui/jobs/{first['id']}/cancel").status_code == 403
        ok = c.post(f"/ui/jobs/{first['id']}/cancel", headers={"X-CSRF-Token": token})
        assert ok.status_code == 200
        with WhirrClient(server.url, token=server.token) as api:
            assert api.get_job(first["id"]).status == "cancelled"
        out = c.post("/logout", data={"csrf": token})
        assert out.status_code == 303 and "Max-Age=0" in out.headers["set-cookie"]
        c.cookies.clear()
        assert c.get("/ui/overview").status_code == 401


def test_whirr_dashboard_against_a_server(server: ServerProcess, tmp_path: Path) -> None:
    with WhirrClient(server.url, token=server.token) as api:
        job = api.submit(["true"], "/", name="remote-one", config={"lr": 0.5}, priority=10)
        api.register_worker("w1", "box")
        claimed = api.claim("w1")
        assert claimed is not None and claimed.id == job.job_id
        api.started(job.job_id, "w1", claimed.attempt, 4242)
    run_dir = server.data_dir / "runs" / job.run_id  # what a worker creates on the shared disk
    run_dir.mkdir(parents=True, exist_ok=True)
    write_metrics(run_dir / "metrics.jsonl", [{"step": i, "loss": 1 / (i + 1)} for i in range(500)])
    samples = run_dir / "system.jsonl"
    samples.write_text(
        "".join(
            f'{{"_timestamp":"2025-01-01T00:00:{i:02d}Z","cpu_percent":{i}.5,"memory_mb":100}}\n'
            for i in range(30)
        )
    )
    dash = DashboardProcess(
        tmp_path, "--server", server.url, env={"WHIRR_TOKEN": server.token or ""}
    )
    try:
        with dash.client() as c:
            assert "server http" in dash.output()
            overview = c.get("/ui/overview").json()
            assert overview["status"]["running"] == 1 and overview["workers"][0]["id"] == "w1"
            page = c.get("/")
            assert page.status_code == 200 and server.url in page.text
            runs = c.get("/ui/runs").json()
            assert [r["id"] for r in runs["rows"]] == [job.run_id]
            run = c.get(f"/ui/runs/{job.run_id}").json()
            assert run["run"]["config"] == {"lr": 0.5} and run["metrics"]["rows"] == 500
            series = c.get(f"/ui/runs/{job.run_id}/series", params={"points": 100}).json()
            assert series["series"][0]["total"] == 500 and len(series["series"][0]["x"]) <= 102
            # System charts come through the API's /runs/{id}/system, and follow new samples.
            assert run["system"] == {"keys": ["cpu_percent", "memory_mb"], "rows": 30}
            system_path = f"/ui/runs/{job.run_id}/series?kind=system&x=time"
            system = c.get(system_path).json()
            cpu = next(s for s in system["series"] if s["key"] == "cpu_percent")
            assert cpu["x"][:2] == [0.0, 1.0] and cpu["y"][-1] == 29.5
            with samples.open("a") as fh:
                fh.write('{"_timestamp":"2025-01-01T00:00:30Z","cpu_percent":99.0}\n')
            grown = c.get(system_path).json()
            assert grown["rows"] == 31
            cpu = next(s for s in grown["series"] if s["key"] == "cpu_percent")
            assert cpu["y"][-1] == 99.0 and cpu["total"] == 31
            # The log: only its tail crosses the wire at first, then what follows.
            log = run_dir / "output.log"
            log.write_bytes(b"".join(b"line %06d\n" % i for i in range(20_000)))
            size = log.stat().st_size
            first = c.get(f"/ui/runs/{job.run_id}/log").json()
            assert first["offset"] == size and first["text"].endswith("line 019999\n")
            assert len(first["text"]) == 64 * 1024 and "line 000000" not in first["text"]
            with log.open("ab") as fh:
                fh.write("more é\n".encode())
            more = c.get(f"/ui/runs/{job.run_id}/log", params={"offset": first["offset"]})
            assert more.json() == {"text": "more é\n", "offset": size + 8, "ended": False}
            # The runs table follows a change to one run (read again alone).
            api_token = {"Authorization": f"Bearer {server.token}"}
            httpx.post(
                f"{server.url}/api/v1/runs/{job.run_id}/summary",
                json={"summary": {"best": 0.25}},
                headers=api_token,
            ).raise_for_status()
            rows = c.get("/ui/runs").json()["rows"]
            assert rows[0]["summary"] == {"best": 0.25}
            token = dash.csrf(c)
            ok = c.post(f"/ui/jobs/{job.job_id}/cancel", headers={"X-CSRF-Token": token})
            assert ok.status_code == 200
        with WhirrClient(server.url, token=server.token) as api:
            assert api.get_job(job.job_id).cancel_requested
    finally:
        dash.stop()


def test_whirr_dashboard_refuses_an_unreachable_server(tmp_path: Path) -> None:
    result = subprocess.run(
        [*WHIRR, "dashboard", "-s", f"http://127.0.0.1:{free_port()}"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 1 and result.stderr.startswith("Error: cannot reach")


def test_whirr_dashboard_outside_a_project_says_so(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k != "WHIRR_SERVER_URL"}
    result = subprocess.run(
        [*WHIRR, "dashboard"], cwd=tmp_path, capture_output=True, text=True, timeout=60, env=env
    )
    assert result.returncode == 1 and "whirr init" in result.stderr
