"""The disk fills while a real ``whirr worker`` runs: it pauses claiming and retries its
report, instead of crashing with its jobs left ``running`` until their leases expire; once
there is room again both jobs complete.

The disk is a real small tmpfs as root; elsewhere the worker's ``RLIMIT_FSIZE`` is lowered
from outside (``prlimit``) so that the database cannot grow (``disk_faults``)."""

from __future__ import annotations

import os
import resource
import signal
import subprocess
import sys
from pathlib import Path

from disk_faults import fill, free, small_disk
from server_process import alive, wait_for

from whirr.project import init_project
from whirr.services import Jobs

#: Seconds before the failed first attempt may be claimed again.
RETRY_DELAY = 3.0


def test_a_full_disk_pauses_claims_and_the_worker_carries_on(tmp_path: Path) -> None:
    marker = tmp_path / "failed-once"  # off the small disk
    with small_disk(tmp_path, size="8m") as (where, kind):
        project, _ = init_project(where / "proj")
        store = project.open_store()
        # The first attempt fails; its retry waits RETRY_DELAY, and the disk fills in that
        # time: the claim of the retry is the write that finds the disk full.
        fail_once = f"test -e {marker} && exit 0; touch {marker}; exit 1"
        job = Jobs(store).submit(
            ["sh", "-c", fail_once], str(project.root), retries=1, retry_delay=RETRY_DELAY
        )
        log_path = tmp_path / "worker.log"
        with open(log_path, "wb") as log:
            worker = subprocess.Popen(
                [sys.executable, "-m", "whirr.cli.main", "worker"],
                cwd=project.root,
                stdout=log,
                stderr=subprocess.STDOUT,
                # A file-size limit then makes writes fail with EFBIG, not kill the worker.
                preexec_fn=lambda: signal.signal(signal.SIGXFSZ, signal.SIG_IGN),
            )
        try:
            wait_for(lambda: store.job(job.id).attempt == 2, timeout=30)
            if kind == "tmpfs":
                fill(project.dir.parent, kind)
            else:
                largest = max(p.stat().st_size for p in project.dir.glob("whirr.db*"))
                _, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
                resource.prlimit(worker.pid, resource.RLIMIT_FSIZE, (largest, hard))
            wait_for(lambda: "Cannot claim jobs" in log_path.read_text(), timeout=30)
            assert alive(worker.pid), log_path.read_text()
            assert store.job(job.id).status == "queued"
            if kind == "tmpfs":
                free(project.dir.parent, kind)
            else:
                resource.prlimit(worker.pid, resource.RLIMIT_FSIZE, (hard, hard))
            wait_for(lambda: store.job(job.id).status == "completed", timeout=60)
            text = log_path.read_text()
            assert "the disk is full" in text or "I/O error" in text, text
            assert "claiming resumed" in text, text
            assert "Traceback" not in text, text
        finally:
            if worker.poll() is None:
                worker.send_signal(signal.SIGINT)
                try:
                    worker.wait(timeout=20)
                except subprocess.TimeoutExpired:
                    os.kill(worker.pid, signal.SIGKILL)
                    worker.wait()
            store.close()
