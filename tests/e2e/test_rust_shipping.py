"""The Rust worker ships its jobs' run files (issue 16), end to end with real processes.

A server on data dir A and ``whirr-worker`` on data dir C (no shared directory): after a
job completes, the server's ``output.log``, ``metrics.jsonl``, ``system.jsonl``,
``meta.json`` and artifacts are the worker's, byte for byte, and ``whirr logs`` and
``whirr show --server`` on the head node see them. A worker SIGKILLed mid-job leaves a
ledger that the next worker on that data dir ships; attempt 2 of a job on a fresh data
dir continues ``_idx``; a worker whose data dir *is* the server's ships nothing. (All on
one machine: before reading the server's copy a test moves the worker's data dir away,
so the server cannot be reading the worker's files in place.)
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from server_process import ServerProcess, wait_for
from shipping_env import (  # noqa: F401 - fixtures
    ROWS,
    ServerCopy,
    Workers,
    a_killed_workers_successor_ships_the_rest,
    attempt_two_on_a_fresh_data_dir_continues_idx,
    copy_fixture,
    file_sha,
    hide,
    job_dir,
    json_lines,
    no_ledgers,
    on_the_head_node,
    same_files,
    sha,
    ship_a_job,
    shipped_job,
    wait_completed,
    workers_fixture,
)

from whirr.client import WhirrClient

pytestmark = pytest.mark.skipif(sys.platform != "linux", reason="the worker is Linux-only")

ARTIFACT_BYTES = 20 * 1024 * 1024 + 12_345  # more than one upload piece (16 MiB)

# Saves two artifacts, one in a subdirectory, one larger than an upload piece.
JOB = shipped_job(
    "rust-shipped",
    f"""\
with open("model.bin", "wb") as fh:
    fh.write(os.urandom({ARTIFACT_BYTES}))
run.save_artifact("model.bin", name="ckpt/model.bin")
with open("notes.txt", "w") as fh:
    fh.write("small")
run.save_artifact("notes.txt")
""",
)


def test_rust_worker_ships_every_run_file_and_reports_the_end_after(
    server: ServerProcess, workers: Workers, copy: ServerCopy, tmp_path: Path
) -> None:
    data_c = tmp_path / "worker-c"
    with WhirrClient(server.url, token=server.token) as api:
        cwd = job_dir(tmp_path, JOB)
        job_id, run_id = ship_a_job("rust", data_c, "box-c", api, workers, copy, cwd)
        wait_for(lambda: no_ledgers(data_c), timeout=30)
        # The final sizes carried the whole files too: the server says they are whole.
        assert copy.state(run_id, "meta.json") == "complete", copy.files(run_id)
        workers.stop_all()
        local = hide(data_c) / "runs" / run_id
        same_files(copy, local, run_id, job_id)
        assert len(json_lines((local / "metrics.jsonl").read_bytes())) == 2 * ROWS
        # Both artifacts were uploaded (streamed, sha256-checked) and recorded.
        model = api.read_artifact(run_id, "ckpt/model.bin")
        assert len(model) == ARTIFACT_BYTES
        assert sha(model) == file_sha(local / "artifacts/ckpt/model.bin")
        assert api.read_artifact(run_id, "notes.txt") == b"small"
        assert sorted(a.path for a in api.get_run(run_id).artifacts) == [
            "ckpt/model.bin",
            "notes.txt",
        ]

    elsewhere = tmp_path / "head"
    elsewhere.mkdir()
    logs = on_the_head_node(server, elsewhere, "logs", str(job_id), "--server", server.url)
    assert logs == (local / "output.log").read_bytes()
    shown = on_the_head_node(server, elsewhere, "show", run_id, "--server", server.url).decode()
    assert f"Last metrics ({2 * ROWS} rows)" in shown, shown
    assert f"step  {2 * ROWS - 1}" in shown, shown
    # Where the files really are: shipped from the worker's dir to the server's copy.
    assert f"/runs/{run_id} to the server (complete)" in shown, shown
    assert "Warning" not in shown, shown
    assert "ckpt/model.bin" in shown, shown


def test_a_killed_rust_workers_successor_ships_the_rest(
    server: ServerProcess, workers: Workers, copy: ServerCopy, tmp_path: Path
) -> None:
    data_c = tmp_path / "worker-c"
    cwd = job_dir(tmp_path, JOB)
    with WhirrClient(server.url, token=server.token) as api:
        run_id = a_killed_workers_successor_ships_the_rest(
            "rust", data_c, "box-c", api, workers, copy, cwd, stop=workers.stop_all
        )
        assert api.read_artifact(run_id, "notes.txt") == b"small"


def test_attempt_two_on_a_fresh_rust_worker_continues_idx(
    server: ServerProcess, workers: Workers, copy: ServerCopy, tmp_path: Path
) -> None:
    attempt_two_on_a_fresh_data_dir_continues_idx(
        "rust", server, workers, copy, tmp_path, stop=workers.stop_all
    )


def test_a_rust_worker_on_the_servers_data_dir_ships_nothing(
    server: ServerProcess, workers: Workers, copy: ServerCopy, tmp_path: Path
) -> None:
    workers.start("rust", server.data_dir, worker_id="shared-box")
    with WhirrClient(server.url, token=server.token) as api:
        job_id = api.submit([sys.executable, "job.py"], str(job_dir(tmp_path, JOB))).job_id
        wait_completed(api, job_id, workers)
        run_id = api.get_job(job_id).run_id
        assert run_id is not None
    workers.stop_all()
    assert copy.files(run_id)["mode"] == "shared"
    # No ledger, no upload: the files are the ones the job wrote in place.
    assert no_ledgers(server.data_dir)
    assert b"done job-" in copy.log(job_id)
    assert (server.data_dir / "runs" / run_id / "metrics.jsonl").stat().st_size > 0
    out = workers.output()
    assert "run files shared" in out, out
    assert "shipping" not in out, out
