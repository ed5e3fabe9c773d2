"""A job controls its run directory; the server must serve nothing outside it.

Each test runs a hostile job the way an attacker would (a real ``whirr worker`` on the
server's data dir), then asks for the job's files through every route that reads them:
the API's logs, metrics, system samples and artifacts, and the dashboard's pages.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from server_process import ServerProcess, start_remote_worker, stop_process

from whirr.client import WhirrClient

SECRET = "top secret, not in any run"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    proc = ServerProcess(Path(tmp_path_factory.mktemp("server")))
    worker = start_remote_worker(proc)
    yield proc
    stop_process(worker)
    proc.stop()


@pytest.fixture(scope="module")
def secrets(server: ServerProcess) -> Path:
    """A folder outside the data dir holding a secret file and a secret JSONL."""
    folder = server.root / "outside"
    folder.mkdir(exist_ok=True)
    (folder / "secret.txt").write_text(SECRET)
    (folder / "secret.jsonl").write_text(f'{{"_idx": 0, "loss": 1.0, "secret": "{SECRET}"}}\n')
    return folder


def run_job(server: ServerProcess, script: str) -> tuple[int, str]:
    """Run ``sh -c script`` on the worker to its end: (job id, run id)."""
    with WhirrClient(server.url, token=server.token) as client:
        job_id = client.submit(["sh", "-c", script], str(server.root)).job_id
        job = client.wait_for_job(job_id, timeout=60)
    assert job.status == "completed", job
    assert job.run_id is not None
    return job_id, job.run_id


def get(server: ServerProcess, path: str, timeout: float = 10) -> httpx.Response:
    return httpx.get(f"{server.url}{path}", headers=server.headers(), timeout=timeout)


def test_symlinks_planted_by_a_job_are_never_followed(server: ServerProcess, secrets: Path) -> None:
    # The repro of the report, pointed at a folder of our own instead of / and /etc.
    job_id, run = run_job(
        server,
        'cd "$WHIRR_RUN_DIR" && rm -rf artifacts output.log metrics.jsonl system.jsonl && '
        f"ln -s {secrets} artifacts && ln -s {secrets}/secret.txt output.log && "
        f"ln -s {secrets}/secret.jsonl metrics.jsonl && "
        f"ln -s {secrets}/secret.jsonl system.jsonl",
    )
    for path in (
        f"/api/v1/runs/{run}/artifacts/secret.txt",
        f"/api/v1/runs/{run}/artifacts/artifacts/secret.txt",
        f"/api/v1/runs/{run}/artifacts/output.log",
        f"/api/v1/runs/{run}/artifacts/metrics.jsonl",
        f"/ui/runs/{run}/artifacts/secret.txt",
    ):
        response = get(server, path)
        assert response.status_code in (404, 422), (path, response.text)
        assert SECRET not in response.text
    # The run directory is listed (as the original whirr did), its symlinks are not.
    listing = get(server, f"/api/v1/runs/{run}/artifacts").json()
    listed = {a["path"] for a in listing["artifacts"]}
    assert not listed & {"output.log", "metrics.jsonl", "system.jsonl"}, listed
    assert not [p for p in listed if p.startswith("artifacts")], listed
    for path in (
        f"/api/v1/jobs/{job_id}/logs",
        f"/api/v1/runs/{run}/metrics",
        f"/api/v1/runs/{run}/system",
        f"/ui/runs/{run}",
        f"/ui/runs/{run}/log",
        f"/ui/runs/{run}/series?keys=loss",
        f"/ui/runs/{run}/series?kind=system",
    ):
        response = get(server, path)
        assert SECRET not in response.text, path
        assert response.status_code < 500, (path, response.text)
    assert get(server, f"/api/v1/jobs/{job_id}/logs").content == b""
    assert get(server, f"/api/v1/runs/{run}/metrics").json()["count"] == 0
    assert get(server, f"/api/v1/runs/{run}/system").json()["count"] == 0


def test_a_symlinked_folder_inside_artifacts_is_not_entered(
    server: ServerProcess, secrets: Path
) -> None:
    _, run = run_job(
        server,
        'cd "$WHIRR_RUN_DIR" && mkdir -p artifacts/ckpt && printf w > artifacts/ckpt/model.pt && '
        f"ln -s {secrets} artifacts/ckpt/escape && ln -s / artifacts/root",
    )
    listing = get(server, f"/api/v1/runs/{run}/artifacts").json()
    saved = [a["path"] for a in listing["artifacts"] if a["path"].startswith("artifacts/")]
    assert saved == ["artifacts/ckpt/model.pt"]
    for rel in ("artifacts/ckpt/model.pt", "ckpt/model.pt"):  # a bare name: artifacts/NAME
        assert get(server, f"/api/v1/runs/{run}/artifacts/{rel}").content == b"w"
    for rel in (
        "ckpt/escape/secret.txt",
        "root/etc/passwd",
        "artifacts/ckpt/escape/secret.txt",
        "artifacts/root/etc/passwd",
    ):
        response = get(server, f"/api/v1/runs/{run}/artifacts/{rel}")
        assert response.status_code in (404, 422), (rel, response.text)
        assert b"root:" not in response.content and SECRET not in response.text


def test_a_run_directory_swapped_for_a_symlink_is_not_read(
    server: ServerProcess, secrets: Path
) -> None:
    (secrets / "artifacts").mkdir(exist_ok=True)
    (secrets / "artifacts" / "secret.txt").write_text(SECRET)
    (secrets / "output.log").write_text(SECRET)
    job_id, run = run_job(
        server,
        'cd "$WHIRR_RUN_DIR/.." && mv "$WHIRR_RUN_ID" "$WHIRR_RUN_ID.moved" && '
        f'ln -s {secrets} "$WHIRR_RUN_ID"',
    )
    for rel in ("secret.txt", "output.log", "artifacts/secret.txt"):
        response = get(server, f"/api/v1/runs/{run}/artifacts/{rel}")
        assert response.status_code in (404, 422) and SECRET not in response.text
    assert get(server, f"/api/v1/runs/{run}/artifacts").json()["count"] == 0
    assert SECRET not in get(server, f"/api/v1/jobs/{job_id}/logs").text


def test_a_fifo_or_device_as_log_cannot_hold_up_the_server(server: ServerProcess) -> None:
    fifo_job, _ = run_job(server, 'cd "$WHIRR_RUN_DIR" && rm output.log && mkfifo output.log')
    zero_job, _ = run_job(
        server, 'cd "$WHIRR_RUN_DIR" && rm output.log && ln -s /dev/zero output.log'
    )
    # More requests than the server has reader threads (8): before, each one blocked a
    # thread in open() for good and every other read then waited behind them.
    answers: list[int] = []

    def fetch(job_id: int) -> None:
        answers.append(get(server, f"/api/v1/jobs/{job_id}/logs", timeout=20).status_code)

    threads = [threading.Thread(target=fetch, args=(fifo_job,)) for _ in range(12)]
    threads.append(threading.Thread(target=fetch, args=(zero_job,)))
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    assert answers == [200] * len(threads)
    # Every reader thread is free again: other reads are answered (within get's timeout).
    assert get(server, "/api/v1/status").status_code == 200
    assert get(server, f"/api/v1/jobs/{zero_job}/logs").content == b""


def test_the_whole_run_directory_is_served_read_only_and_never_beyond_it(
    server: ServerProcess, secrets: Path
) -> None:
    """``GET /runs/{id}/artifacts`` lists the run's directory by path relative to it and
    serves each file, as the original whirr did; a symlink or FIFO a job planted at the
    top of its run directory is neither listed nor read, nor does it hold anything up."""
    _, run = run_job(
        server,
        'cd "$WHIRR_RUN_DIR" && echo hello && printf w > artifacts/model.bin && '
        f"printf notes > notes.txt && ln -s {secrets}/secret.txt leak.txt && "
        f"ln -s {secrets} outside && mkfifo pipe",
    )
    listing = get(server, f"/api/v1/runs/{run}/artifacts").json()
    listed = [a["path"] for a in listing["artifacts"]]
    assert listing["count"] == len(listed)
    assert {"output.log", "artifacts/model.bin", "notes.txt"} <= set(listed), listed
    assert listed == sorted(listed)
    assert not {"leak.txt", "pipe"} & set(listed)
    assert not [p for p in listed if p.startswith("outside")]
    assert b"hello" in get(server, f"/api/v1/runs/{run}/artifacts/output.log").content
    assert get(server, f"/api/v1/runs/{run}/artifacts/notes.txt").content == b"notes"
    assert get(server, f"/api/v1/runs/{run}/artifacts/artifacts/model.bin").content == b"w"
    assert get(server, f"/api/v1/runs/{run}/artifacts/model.bin").content == b"w"
    for rel in ("leak.txt", "outside/secret.txt", "pipe", "nothing.txt", "artifacts/leak.txt"):
        response = get(server, f"/api/v1/runs/{run}/artifacts/{rel}", timeout=20)
        assert response.status_code in (404, 422), (rel, response.text)
        assert SECRET not in response.text
    with WhirrClient(server.url, token=server.token) as client:
        # whirr's own client still means the files a user saved under artifacts/.
        assert [a.path for a in client.artifacts(run)] == ["model.bin"]
        assert client.read_artifact(run, "model.bin") == b"w"
        assert {"output.log", "artifacts/model.bin"} <= {a.path for a in client.list_run_files(run)}
