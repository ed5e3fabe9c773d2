"""Run files shipped to a server without a shared filesystem (issue 16): the routes
``GET /runs/{id}/files``, ``PUT /runs/{id}/files/{name}``, ``POST /runs/{id}/files/final``
against a real server, and the server id a worker compares its data dir with."""

from __future__ import annotations

import os
import stat
import subprocess
from pathlib import Path

import httpx
import pytest
from server_process import WHIRR, ServerProcess

from whirr.client import WhirrClient
from whirr.run import SkippedLine
from whirr.services.errors import InvalidRequest, InvalidState, LeaseLost, OffsetGap, StaleAttempt
from whirr.wire.run_events import RunStartRequest


def shipped_run(client: WhirrClient, worker: str, **submit: object) -> tuple[int, str, int]:
    """(job id, run id, attempt) of a job a pretend worker claimed and started shipping."""
    client.cancel_all_queued()
    job_id = client.submit(["true"], "/tmp", **submit).job_id  # type: ignore[arg-type]
    job = client.claim(worker)
    assert job is not None and job.id == job_id
    client.started(
        job_id, worker, job.attempt, 4242, files="shipped", run_dir=f"/w/{worker}/{job.run_id}"
    )
    return job_id, job.run_id, job.attempt


def server_file(server: ServerProcess, run_id: str, name: str) -> bytes:
    return (server.data_dir / "runs" / run_id / name).read_bytes()


def test_health_and_register_tell_the_server_id(server: ServerProcess, client: WhirrClient) -> None:
    path = server.data_dir / "server-id"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    written = path.read_text().strip()
    assert len(written) == 32
    assert client.health().server_id == written
    assert httpx.get(f"{server.url}/health").json()["server_id"] == written
    assert client.register_worker("w-id", "host-a").server_id == written


def test_started_records_the_mode_and_the_workers_run_dir(
    server: ServerProcess, client: WhirrClient
) -> None:
    client.register_worker("w-mode", "gpu-box")
    _, run_id, attempt = shipped_run(client, "w-mode")
    run = client.get_run(run_id)
    assert (run.files_mode, run.worker_run_dir) == ("shipped", f"/w/w-mode/{run_id}")
    # The server's copy is where its readers look.
    assert run.run_dir == str(server.data_dir / "runs" / run_id)
    files = client.run_files(run_id)
    assert (files.mode, files.attempt, files.hostname) == ("shipped", attempt, "gpu-box")
    assert files.worker_run_dir == f"/w/w-mode/{run_id}"
    assert files.files["output.log"].state == "pending"

    # An old worker says nothing: its files are written in place, as before.
    client.cancel_all_queued()
    job_id = client.submit(["true"], "/tmp").job_id
    job = client.claim("w-old")
    assert job is not None
    client.started(job_id, "w-old", job.attempt, 1)
    old = client.get_run(job.run_id)
    assert (old.files_mode, old.worker_run_dir) == (None, None)
    assert client.run_files(job.run_id).mode == "shared"
    assert client.run_files(job.run_id).files["output.log"].state == "shared"


def test_appends_are_idempotent_by_offset_and_a_gap_says_the_size(
    server: ServerProcess, client: WhirrClient
) -> None:
    _, run_id, attempt = shipped_run(client, "w-append")
    assert client.upload_run_file(run_id, "output.log", attempt, 0, b"abc") == 3
    # A retry of a request whose answer was lost, with more bytes: only the new ones land.
    assert client.upload_run_file(run_id, "output.log", attempt, 0, b"abcdef") == 6
    assert client.upload_run_file(run_id, "output.log", attempt, 3, b"def") == 6
    assert client.upload_run_file(run_id, "output.log", attempt, 2, b"cdefgh") == 8
    with pytest.raises(OffsetGap) as gap:
        client.upload_run_file(run_id, "output.log", attempt, 10, b"xyz")
    assert gap.value.size == 8
    assert client.upload_run_file(run_id, "output.log", attempt, gap.value.size, b"ij\n") == 11
    assert server_file(server, run_id, "output.log") == b"abcdefghij\n"
    described = client.run_files(run_id).files["output.log"]
    assert (described.size, described.attempt_size, described.state) == (11, 11, "live")
    mode = (server.data_dir / "runs" / run_id / "output.log").stat().st_mode
    assert stat.S_IMODE(mode) == 0o600


def test_a_stale_attempt_is_refused_and_attempts_append_after_their_base(
    server: ServerProcess, client: WhirrClient
) -> None:
    job_id, run_id, first = shipped_run(client, "w-retry", retries=1, retry_delay=0)
    client.upload_run_file(run_id, "output.log", first, 0, b"one\n")
    client.upload_run_file(run_id, "metrics.jsonl", first, 0, b'{"_idx": 0}\n{"_i')
    client.complete(job_id, "w-retry", first, 1)
    job = client.claim("w-retry")
    assert job is not None and job.attempt == first + 1
    second = job.attempt
    client.started(job_id, "w-retry", second, 4243, files="shipped", run_dir="/elsewhere")

    for stale in (first, second + 1, 0):
        with pytest.raises(StaleAttempt) as refused:
            client.upload_run_file(run_id, "output.log", stale, 4, b"late\n")
        assert refused.value.attempt == second
        assert isinstance(refused.value, LeaseLost)
    with pytest.raises(StaleAttempt):
        client.final_run_files(run_id, first, {"output.log": 9})

    # Attempt 2's offset 0 is the server's byte 4: it appends like a local retry.
    assert client.upload_run_file(run_id, "output.log", second, 0, b"two\n") == 4
    assert client.upload_run_file(run_id, "output.log", second, 0, b"two\n") == 4
    assert server_file(server, run_id, "output.log") == b"one\ntwo\n"
    # Attempt 1's torn last row is closed off, so attempt 2's first row stays whole.
    client.upload_run_file(run_id, "metrics.jsonl", second, 0, b'{"_idx": 1}\n')
    assert server_file(server, run_id, "metrics.jsonl") == b'{"_idx": 0}\n{"_i\n{"_idx": 1}\n'
    files = client.run_files(run_id)
    assert files.attempt == second
    assert (files.files["output.log"].size, files.files["output.log"].attempt_size) == (8, 4)
    with pytest.warns(SkippedLine, match="line 2 "):  # the closed-off torn row, said
        assert [row["_idx"] for row in client.metrics(run_id)] == [0, 1]
    assert client.get_run(run_id).worker_run_dir == "/elsewhere"


def test_the_previous_attempt_ships_its_tail_while_the_next_waits(
    server: ServerProcess, client: WhirrClient
) -> None:
    job_id, run_id, first = shipped_run(client, "w-tail", retries=1, retry_delay=3600)
    client.upload_run_file(run_id, "output.log", first, 0, b"one")
    client.complete(job_id, "w-tail", first, -9)
    assert client.get_job(job_id).status == "queued"  # attempt 2 waits for its delay
    # A worker that comes back ships attempt 1's tail: nothing of attempt 2 arrived yet.
    assert client.upload_run_file(run_id, "output.log", first, 3, b" tail\n") == 9
    assert server_file(server, run_id, "output.log") == b"one tail\n"
    client.cancel(job_id)


def test_whole_files_are_replaced(server: ServerProcess, client: WhirrClient) -> None:
    _, run_id, attempt = shipped_run(client, "w-whole")
    assert client.upload_run_file(run_id, "meta.json", attempt, 0, b'{"a": 1, "b": 2}') == 16
    assert client.upload_run_file(run_id, "meta.json", attempt, 0, b'{"a": 3}') == 8
    assert server_file(server, run_id, "meta.json") == b'{"a": 3}'
    with pytest.raises(InvalidRequest):
        client.upload_run_file(run_id, "meta.json", attempt, 5, b"x")
    assert client.run_files(run_id).files["meta.json"].size == 8
    leftovers = [p.name for p in (server.data_dir / "runs" / run_id).iterdir()]
    assert not [n for n in leftovers if n.endswith(".tmp")]


def test_only_shipped_names_are_taken_and_no_symlink_is_followed(
    server: ServerProcess, client: WhirrClient, tmp_path: Path
) -> None:
    _, run_id, attempt = shipped_run(client, "w-names")
    for name in ("notes.txt", "artifacts", ".output.log", "output.log.tmp", "whirr.db"):
        with pytest.raises(InvalidRequest):
            client.upload_run_file(run_id, name, attempt, 0, b"x")
    for path in (
        f"/api/v1/runs/{run_id}/files/..%2F..%2Fwhirr.db?attempt={attempt}",
        f"/api/v1/runs/{run_id}/files/%2E%2E?attempt={attempt}",
        f"/api/v1/runs/..%2F{run_id}/files/output.log?attempt={attempt}",
    ):
        status, _ = server.raw(
            "PUT", path, b"x", headers={"Content-Type": "application/octet-stream"}
        )
        assert status in (404, 422), path
    assert not list(server.data_dir.glob("*.log"))

    # A symlink planted in the server's run directory is never written through.
    outside = tmp_path / "outside.txt"
    outside.write_bytes(b"keep")
    run_dir = server.data_dir / "runs" / run_id
    run_dir.mkdir(parents=True, exist_ok=True)
    for name in ("output.log", "meta.json"):
        (run_dir / name).symlink_to(outside)
        with pytest.raises(InvalidRequest):
            client.upload_run_file(run_id, name, attempt, 0, b"evil")
    assert outside.read_bytes() == b"keep"
    # A run id that is not one, and a run the server does not know.
    status, _ = server.raw("GET", "/api/v1/runs/..%2F..%2Fdata/files")
    assert status in (404, 422)
    status, _ = server.raw("GET", "/api/v1/runs/no-such-run/files")
    assert status == 404


def test_final_sizes_tell_complete_from_missing_tail(
    server: ServerProcess, client: WhirrClient
) -> None:
    job_id, run_id, attempt = shipped_run(client, "w-final")
    client.upload_run_file(run_id, "output.log", attempt, 0, b"hello\n")
    client.upload_run_file(run_id, "metrics.jsonl", attempt, 0, b'{"_idx": 0}\n')
    client.upload_run_file(run_id, "meta.json", attempt, 0, b"{}")
    after = client.final_run_files(
        run_id, attempt, {"output.log": 12, "metrics.jsonl": 12, "meta.json": 2}
    )
    states = {name: f.state for name, f in after.files.items()}
    assert states == {
        "output.log": "missing_tail",
        "metrics.jsonl": "complete",
        "system.jsonl": "complete",  # never written: its final size is 0
        "meta.json": "complete",
    }
    assert after.files["output.log"].final_size == 12
    client.upload_run_file(run_id, "output.log", attempt, 6, b"world\n")
    client.complete(job_id, "w-final", attempt, 0)
    # Uploads for the current attempt are taken after it ended (a worker's last flush).
    assert client.run_files(run_id).files["output.log"].state == "complete"

    # An attempt that ended without final sizes may lack its tail: it says so.
    job_id, run_id, attempt = shipped_run(client, "w-nofinal")
    client.upload_run_file(run_id, "output.log", attempt, 0, b"partial")
    client.complete(job_id, "w-nofinal", attempt, 0)
    files = client.run_files(run_id).files
    assert files["output.log"].state == "missing_tail"
    assert files["metrics.jsonl"].state == "pending"
    with pytest.raises(InvalidRequest):
        client.final_run_files(run_id, attempt, {"secrets.txt": 1})


def test_bodies_up_to_8_mib_are_taken_and_bigger_ones_refused(
    server: ServerProcess, client: WhirrClient
) -> None:
    _, run_id, attempt = shipped_run(client, "w-big")
    big = b"x" * (8 << 20)  # past the server's 1 MiB limit for JSON bodies
    assert client.upload_run_file(run_id, "output.log", attempt, 0, big) == len(big)
    with pytest.raises(InvalidRequest, match="size limit"):
        client.upload_run_file(run_id, "output.log", attempt, len(big), big + b"x" * (1 << 20))
    assert client.run_files(run_id).files["output.log"].attempt_size == len(big)


def test_a_direct_run_ships_as_attempt_0(server: ServerProcess, client: WhirrClient) -> None:
    client.start_run(RunStartRequest(run_id="local-ship-1", hostname="laptop", run_dir="/l/r"))
    assert client.run_files("local-ship-1").mode == "local"
    assert client.upload_run_file("local-ship-1", "output.log", 0, 0, b"hi\n") == 3
    with pytest.raises(StaleAttempt):
        client.upload_run_file("local-ship-1", "output.log", 1, 0, b"hi\n")
    shown = client.run_files("local-ship-1")
    assert (shown.mode, shown.attempt, shown.files["output.log"].state) == ("shipped", 0, "live")
    client.finish_run("local-ship-1", "completed")
    assert client.run_files("local-ship-1").files["output.log"].state == "missing_tail"
    client.final_run_files("local-ship-1", 0, {"output.log": 3})
    assert client.run_files("local-ship-1").files["output.log"].state == "complete"


def test_a_direct_run_that_says_it_ships_is_shipped_from_its_start(
    server: ServerProcess, client: WhirrClient
) -> None:
    """``files: "shipped"`` in the start: the mode is right before the first upload, the
    server's copy is where readers look and the script's directory is the worker's."""
    req = RunStartRequest(
        run_id="local-ship-said", hostname="laptop", run_dir="/l/said", files="shipped"
    )
    run = client.start_run(req)
    assert (run.files_mode, run.worker_run_dir) == ("shipped", "/l/said")
    assert run.run_dir == str(server.data_dir / "runs" / "local-ship-said")
    shown = client.run_files("local-ship-said")
    assert (shown.mode, shown.hostname, shown.worker_run_dir) == ("shipped", "laptop", "/l/said")
    assert shown.files["output.log"].state == "pending"
    # Resumed, it says so again and stays shipped.
    client.finish_run("local-ship-said", "completed")
    again = client.start_run(
        RunStartRequest(run_id="local-ship-said", run_dir="/l/said", resume=True, files="shipped")
    )
    assert (again.files_mode, again.worker_run_dir) == ("shipped", "/l/said")


def test_a_shared_runs_files_are_not_uploaded(server: ServerProcess, client: WhirrClient) -> None:
    client.cancel_all_queued()
    job_id = client.submit(["true"], "/tmp").job_id
    job = client.claim("w-shared")
    assert job is not None
    client.started(job_id, "w-shared", job.attempt, 1, files="shared")
    with pytest.raises(InvalidState):
        client.upload_run_file(job.run_id, "output.log", job.attempt, 0, b"x")
    assert client.run_files(job.run_id).mode == "shared"


def _token(server: ServerProcess, name: str, scope: str) -> str:
    env = {k: v for k, v in os.environ.items() if k not in ("WHIRR_TOKEN", "WHIRR_DATA_DIR")}
    done = subprocess.run(
        [*WHIRR, "token", "create", name, "--scope", scope, "-d", str(server.data_dir)],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


def test_worker_and_submit_tokens_ship_read_and_run_tokens_do_not(
    server: ServerProcess, client: WhirrClient
) -> None:
    client.cancel_all_queued()
    job_id = client.submit(["true"], "/tmp").job_id
    answer = client.claim_answer("w-scopes")
    job = answer.job
    assert job is not None and job.id == job_id and job.run_token
    client.started(job_id, "w-scopes", job.attempt, 1, files="shipped", run_dir="/x")
    tokens = {
        "worker": _token(server, "shipper-w", "worker"),
        "submit": _token(server, "shipper-s", "submit"),
        "read": _token(server, "reader", "read"),
        "run": job.run_token,
    }
    offset = 0
    for kind, token in tokens.items():
        allowed = kind in ("worker", "submit")
        with WhirrClient(server.url, token=token) as other:
            for call in ("state", "upload", "final"):
                try:
                    if call == "state":
                        other.run_files(job.run_id)
                    elif call == "upload":
                        other.upload_run_file(job.run_id, "output.log", job.attempt, offset, b"x")
                        offset += 1
                    else:
                        other.final_run_files(job.run_id, job.attempt, {"output.log": 2})
                except Exception as exc:
                    assert not allowed, (kind, call, exc)
                    assert "HTTP 403" in str(exc), (kind, call, exc)
                else:
                    assert allowed, (kind, call)
    assert server_file(server, job.run_id, "output.log") == b"xx"


def test_log_metrics_and_system_say_where_the_files_stand(
    server: ServerProcess, client: WhirrClient
) -> None:
    job_id, run_id, attempt = shipped_run(client, "w-honest")
    with server.http() as http:
        # Nothing arrived: a 404 with the reason, never 200 with silent emptiness.
        for path in (f"/jobs/{job_id}/logs", f"/runs/{run_id}/metrics", f"/runs/{run_id}/system"):
            answer = http.get(path)
            assert answer.status_code == 404, path
            assert "has not reached the server" in answer.json()["detail"], path
            assert f"/w/w-honest/{run_id}" in answer.json()["detail"]

        client.upload_run_file(run_id, "output.log", attempt, 0, b"hello\n")
        client.upload_run_file(run_id, "metrics.jsonl", attempt, 0, b'{"_idx": 0, "loss": 1}\n')
        logs = http.get(f"/jobs/{job_id}/logs")
        assert (logs.status_code, logs.text, logs.headers["X-Whirr-Files"]) == (
            200,
            "hello\n",
            "live",
        )
        metrics = http.get(f"/runs/{run_id}/metrics")
        assert metrics.headers["X-Whirr-Files"] == "live"
        assert metrics.json()["files"] == "live" and metrics.json()["count"] == 1

        client.final_run_files(run_id, attempt, {"output.log": 10, "metrics.jsonl": 23})
        client.complete(job_id, "w-honest", attempt, 0)
        logs = http.get(f"/jobs/{job_id}/logs")
        assert (logs.text, logs.headers["X-Whirr-Files"]) == ("hello\n", "missing_tail")
        assert http.get(f"/runs/{run_id}/metrics").json()["files"] == "complete"
        # Never written (final size 0): complete and empty, not missing.
        system = http.get(f"/runs/{run_id}/system")
        assert (system.status_code, system.json()["files"], system.json()["count"]) == (
            200,
            "complete",
            0,
        )
        # A follower of a log that never arrived for an ended attempt is told so too.
        job_id, run_id, attempt = shipped_run(client, "w-honest-2")
        client.complete(job_id, "w-honest-2", attempt, 0)
        assert http.get(f"/jobs/{job_id}/logs", params={"follow": "true"}).status_code == 404


def test_shared_runs_answer_as_before_with_their_mode(
    server: ServerProcess, client: WhirrClient
) -> None:
    client.cancel_all_queued()
    job_id = client.submit(["true"], "/tmp").job_id
    job = client.claim("w-shared-2")
    assert job is not None
    client.started(job_id, "w-shared-2", job.attempt, 1)  # an old worker: no word on files
    with server.http() as http:
        logs = http.get(f"/jobs/{job_id}/logs")
        assert (logs.status_code, logs.text, logs.headers["X-Whirr-Files"]) == (200, "", "shared")
        assert http.get(f"/runs/{job.run_id}/metrics").json() == {
            "metrics": [],
            "count": 0,
            "files": "shared",
            "warnings": None,
        }
