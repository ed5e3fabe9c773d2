"""Named tokens with scopes (issue 22): a read token cannot submit, a submit token cannot
claim, a worker token cannot pause the queue; the server's own token still does all of
it; ``whirr token revoke`` takes effect on the running server without a restart."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
from server_process import WHIRR, ServerProcess, stop_process, wait_for

from whirr.api.routes import ROUTES
from whirr.api.tokens import SCOPES


def token_cli(server: ServerProcess, *args: str) -> subprocess.CompletedProcess[str]:
    """``whirr token ...`` on the server's data dir (as an operator on its machine runs it)."""
    env = {k: v for k, v in os.environ.items() if k not in ("WHIRR_TOKEN", "WHIRR_DATA_DIR")}
    return subprocess.run(
        [*WHIRR, "token", *args, "-d", str(server.data_dir)],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )


def create(server: ServerProcess, name: str, *scopes: str) -> str:
    args = [a for s in scopes for a in ("--scope", s)]
    done = token_cli(server, "create", name, *args)
    assert done.returncode == 0, done.stderr
    token = done.stdout.strip()
    assert token.startswith("whirr_") and token not in (server.token or "")
    return token


def client(server: ServerProcess, token: str) -> httpx.Client:
    return httpx.Client(
        base_url=f"{server.url}/api/v1",
        headers={"Authorization": f"Bearer {token}"},
        timeout=30,
    )


@pytest.fixture
def server(tmp_path: Path):  # type: ignore[no-untyped-def]
    proc = ServerProcess(tmp_path)
    yield proc
    proc.stop()


def test_scopes_are_enforced_per_route_class(server: ServerProcess, tmp_path: Path) -> None:
    read = create(server, "reader", "read")
    submit = create(server, "alice", "submit")
    worker = create(server, "gpu-1", "worker")
    job = {"command_argv": ["true"], "workdir": str(tmp_path)}
    with client(server, read) as c:
        assert c.get("/jobs").status_code == 200
        assert c.get("/runs").status_code == 200
        refused = c.post("/jobs", json=job)
        assert refused.status_code == 403
        assert "'submit'" in refused.json()["detail"] and "reader" in refused.json()["detail"]
    with client(server, submit) as c:
        assert c.post("/jobs", json=job).status_code == 200
        refused = c.post("/jobs/claim", json={"worker_id": "w1"})
        assert refused.status_code == 403 and "'worker'" in refused.json()["detail"]
        assert c.post("/queue/pause").status_code == 403
    with client(server, worker) as c:
        claimed = c.post("/jobs/claim", json={"worker_id": "w1"})
        assert claimed.status_code == 200, claimed.text
        assert c.get("/jobs").status_code == 200
        assert c.post("/jobs", json=job).status_code == 403
        refused = c.post("/queue/pause")
        assert refused.status_code == 403 and "'admin'" in refused.json()["detail"]
    with client(server, "whirr_not-a-token") as c:
        assert c.get("/jobs").status_code == 403
    # The server's own token keeps every power.
    with server.http() as c:
        assert c.post("/queue/pause").status_code == 200
        assert c.post("/queue/resume").status_code == 200
        assert c.post("/jobs", json=job).status_code == 200
    admin = create(server, "ops", "admin")
    with client(server, admin) as c:
        assert c.post("/queue/pause").status_code == 200
        assert c.post("/jobs/claim", json={"worker_id": "w2"}).status_code == 200


def test_revoke_takes_effect_without_a_restart(server: ServerProcess) -> None:
    token = create(server, "temp", "submit")
    with client(server, token) as c:
        assert c.get("/jobs").status_code == 200
        done = token_cli(server, "revoke", "temp")
        assert done.returncode == 0, done.stderr
        assert c.get("/jobs").status_code == 403
    listed = json.loads(token_cli(server, "list", "--json", "--all").stdout)
    assert [(t["name"], t["revoked"] is not None) for t in listed] == [("temp", True)]
    assert json.loads(token_cli(server, "list", "--json").stdout) == []
    again = create(server, "temp", "read")  # the name is free again, with a new secret
    assert again != token
    with client(server, again) as c:
        assert c.get("/jobs").status_code == 200
    with client(server, token) as c:
        assert c.get("/jobs").status_code == 403


def test_a_token_file_that_does_not_parse_grants_nothing(server: ServerProcess) -> None:
    token = create(server, "alice", "submit")
    path = server.data_dir / "tokens.json"
    good = path.read_bytes()
    with client(server, token) as c:
        assert c.get("/jobs").status_code == 200
        path.write_bytes(b"{not json")
        assert c.get("/jobs").status_code == 403
        path.write_bytes(good)
        assert c.get("/jobs").status_code == 200
    with server.http() as c:  # the server's own token does not depend on the file
        path.write_bytes(b"{not json")
        assert c.get("/jobs").status_code == 200


def test_the_token_file_holds_hashes_only_and_is_owner_only(server: ServerProcess) -> None:
    token = create(server, "alice", "submit")
    path = server.data_dir / "tokens.json"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert token not in path.read_text()
    assert token_cli(server, "create", "alice", "--scope", "read").returncode == 1
    assert token_cli(server, "revoke", "nobody").returncode == 1


def test_a_worker_token_is_enough_for_a_remote_worker(
    server: ServerProcess, tmp_path: Path
) -> None:
    worker_token = create(server, "gpu-1", "worker")
    with server.http() as c:
        job = {"command_argv": ["true"], "workdir": str(tmp_path)}
        job_id = c.post("/jobs", json=job).json()["job_id"]
    worker = start_worker(server, worker_token)
    try:
        with server.http() as c:
            wait_for(lambda: c.get(f"/jobs/{job_id}").json()["status"] == "completed", 60)
    finally:
        stop_process(worker)


def start_worker(server: ServerProcess, token: str) -> subprocess.Popen[bytes]:
    """A real remote ``whirr worker`` that authenticates with ``token``."""
    log = server.logs_dir / f"worker-{token[-6:]}.log"
    with open(log, "wb") as fh:
        return subprocess.Popen(
            [*WHIRR, "worker", "--server", server.url, "--data-dir", str(server.data_dir)],
            env={**server.env, "WHIRR_TOKEN": token},
            stdout=fh,
            stderr=subprocess.STDOUT,
        )


def test_every_route_declares_its_scope_in_the_openapi_document() -> None:
    from whirr.api.openapi import document

    doc = document(ROUTES)
    for route in ROUTES:
        path = "/" + route.path.lstrip("/")
        ops = [
            op
            for p, methods in doc["paths"].items()
            for m, op in methods.items()
            if m == route.method.lower() and op["operationId"] == route.name
        ]
        assert len(ops) == 1, path
        if route.public:
            assert ops[0]["security"] == []
        else:
            # Several scopes: alternatives, any one of which will do.
            assert ops[0]["security"] == [{"bearer": [scope]} for scope in route.needs]
            one = route.needs[0] if len(route.needs) == 1 else list(route.needs)
            assert ops[0]["x-whirr-scope"] == one
    # A misspelt scope would lock a route.
    assert {scope for r in ROUTES for scope in r.needs} <= set(SCOPES)
    needs = {r.name: r.needs for r in ROUTES}
    assert needs["pause_queue"] == needs["drain_worker"] == ("admin",)
    assert needs["claim_job"] == needs["heartbeat_job"] == ("worker",)
    assert needs["submit_job"] == needs["attach_run"] == ("submit",)
    # Shipping run files: a worker's or a direct run's shipper; never a read token.
    assert needs["upload_run_file"] == needs["run_files_state"] == ("worker", "submit")
    gets = [r for r in ROUTES if r.method == "GET" and not r.public]
    # Shippers read where to resume from with the scopes they upload with.
    assert all(r.needs == ("read",) or set(r.needs) <= {"worker", "submit"} for r in gets)


def test_the_http_api_doc_lists_every_routes_scope() -> None:
    from whirr.api.openapi import openapi_path

    doc = (Path(__file__).resolve().parents[2] / "docs" / "http-api.md").read_text()
    section = doc.split("## Tokens and scopes", 1)[1].split("\n## ", 1)[0]
    lines = {
        scope: next(line for line in section.splitlines() if line.startswith(f"- **{scope}**"))
        for scope in ("submit", "worker", "admin")
    }
    for route in ROUTES:
        if route.public or route.needs == ("read",):
            continue
        name = f"`{route.method} {openapi_path(route.path).removeprefix('/api/v1')}`"
        for scope in route.needs:
            assert name in lines[scope], (scope, name)
        assert all(name not in line for s, line in lines.items() if s not in route.needs), name


if __name__ == "__main__":
    sys.exit(pytest.main([__file__]))
