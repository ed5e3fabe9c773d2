"""A running job's run directory past the worker's warning size (issue 19 item 3): a real
worker, a real job writing past a tiny ``--warn-run-dir-size``: logged and recorded once
per crossing (``run.size_warning``), shown by ``whirr show`` and ``whirr status ID``."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator

import pytest
from server_process import wait_for

from tests.cli_runner import WHIRR, run_cli
from whirr.project import Project
from whirr.services import Jobs
from whirr.store import EventStore

#: The job: 200 KiB written, then it waits for the test's word at each step (files in its
#: run directory, so each step is an observable state, not a sleep).
_JOB = """
import os, pathlib, time
run = pathlib.Path(os.environ["WHIRR_RUN_DIR"])
def wait(name):
    deadline = time.monotonic() + 60
    while not (run / name).exists():
        if time.monotonic() > deadline:
            raise SystemExit("the test never said " + name)
        time.sleep(0.05)
(run / "big.bin").write_bytes(b"x" * 200 * 1024)
wait("shrink")
(run / "big.bin").unlink()
(run / "shrunk").touch()
wait("grow")
(run / "big.bin").write_bytes(b"x" * 300 * 1024)
wait("done")
"""


@pytest.fixture
def worker(project: Project) -> Iterator[list[subprocess.Popen[bytes]]]:
    """Workers a test starts (output in worker.log); none outlives the test."""
    started: list[subprocess.Popen[bytes]] = []
    yield started
    for process in started:
        if process.poll() is None:
            process.kill()
        process.wait()


def _start_worker(project: Project, started: list[subprocess.Popen[bytes]], *args: str) -> None:
    with open(project.root / "worker.log", "wb") as log:
        started.append(
            subprocess.Popen(
                [*WHIRR, "worker", *args],
                cwd=project.root,
                env=dict(os.environ),
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        )


def _worker_output(project: Project) -> str:
    return (project.root / "worker.log").read_text()


def _warnings(store: EventStore) -> list[int]:
    return [r.event.size for r in store.read(types=["run.size_warning"])]  # type: ignore[attr-defined]


def _beats(store: EventStore) -> int:
    return len(store.read(types=["job.heartbeat"]))


def _measured_again(store: EventStore) -> None:
    """Wait until the worker has measured at least once more: a measurement is due every
    2 heartbeats (the project's interval is 0.2 s), so 5 more heartbeats pass two."""
    start = _beats(store)
    wait_for(lambda: _beats(store) >= start + 5, timeout=30)


def test_a_run_directory_past_the_size_warns_once_per_crossing(
    project: Project, store: EventStore, worker: list[subprocess.Popen[bytes]]
) -> None:
    job = Jobs(store).submit([sys.executable, "-c", _JOB], str(project.root))
    run_dir = project.runs_dir / job.run_id
    _start_worker(project, worker, "--exit-when-empty", "--warn-run-dir-size", "64K")

    [size] = wait_for(lambda: _warnings(store) or None, timeout=30)
    assert size >= 200 * 1024
    _measured_again(store)
    assert len(_warnings(store)) == 1  # still past it: not recorded again
    assert "past 64.0 KiB (--warn-run-dir-size)" in _worker_output(project)
    view = store.run(job.run_id)
    assert view is not None and view.size_warning is not None
    assert (view.size_warning.size, view.size_warning.limit) == (size, 64 * 1024)

    shown = run_cli("show", job.run_id, cwd=project.root, check=True).stdout
    assert "run directory past 64.0 KiB: " in shown
    status = run_cli("status", str(job.id), cwd=project.root, check=True).stdout
    assert "Warning:   run directory past 64.0 KiB" in status

    (run_dir / "shrink").touch()
    wait_for(lambda: (run_dir / "shrunk").exists() or None, timeout=30)
    _measured_again(store)  # measured below the size: the next crossing is news again
    assert len(_warnings(store)) == 1
    (run_dir / "grow").touch()
    wait_for(lambda: len(_warnings(store)) == 2 or None, timeout=30)
    assert _warnings(store)[1] >= 300 * 1024
    (run_dir / "done").touch()
    wait_for(lambda: (store.job(job.id) or job).status == "completed" or None, timeout=30)
    assert len(_warnings(store)) == 2


def test_the_warning_size_option(project: Project) -> None:
    bad = run_cli("worker", "--warn-run-dir-size", "lots", cwd=project.root)
    assert bad.returncode == 2 and "--warn-run-dir-size" in bad.stderr
    assert "Traceback" not in bad.stderr
    helped = run_cli("worker", "--help", cwd=project.root, check=True).stdout
    assert "WHIRR_WARN_RUN_DIR_SIZE" in helped
