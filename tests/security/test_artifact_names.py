"""Artifacts whose names have spaces or non-ASCII letters are served by the API, the
dashboard and the client (issue 22, item 8), and decoding the path opens no way out."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from server_process import ServerProcess

from whirr.client import WhirrClient

NAME = "sub dir/my model é #1.pt"


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[ServerProcess, str]]:
    server = ServerProcess(Path(tmp_path_factory.mktemp("names")))
    with WhirrClient(server.url, token=server.token) as c:
        job_id = c.submit(["true"], "/").job_id
        job = c.claim("w-names")
        assert job is not None
        c.started(job_id, "w-names", job.attempt, 1)
    artifact = server.data_dir / "runs" / job.run_id / "artifacts" / NAME
    artifact.parent.mkdir(parents=True)
    artifact.write_bytes(b"weights")
    (server.root / "secret.txt").write_text("top secret")
    yield server, job.run_id
    server.stop()


def test_the_client_lists_reads_and_downloads_them(
    run: tuple[ServerProcess, str], tmp_path: Path
) -> None:
    server, run_id = run
    with WhirrClient(server.url, token=server.token) as c:
        assert [a.path for a in c.artifacts(run_id)] == [NAME]
        assert c.read_artifact(run_id, NAME) == b"weights"
        saved = c.download_artifact(run_id, NAME, tmp_path)
    assert saved.name == "my model é #1.pt" and saved.read_bytes() == b"weights"


@pytest.mark.parametrize("prefix", ["/api/v1/runs/{run}/artifacts/", "/ui/runs/{run}/artifacts/"])
def test_api_and_dashboard_serve_the_encoded_path(
    run: tuple[ServerProcess, str], prefix: str
) -> None:
    server, run_id = run
    encoded = "sub%20dir/my%20model%20%C3%A9%20%231.pt"
    answer = httpx.get(
        server.url + prefix.format(run=run_id) + encoded, headers=server.headers(), timeout=10
    )
    assert answer.status_code == 200 and answer.content == b"weights"
    climb = httpx.get(
        server.url + prefix.format(run=run_id) + "%2E%2E%2F%2E%2E%2F%2E%2E%2F%2E%2E%2Fsecret.txt",
        headers=server.headers(),
        timeout=10,
    )
    assert 400 <= climb.status_code < 500 and b"top secret" not in climb.content
