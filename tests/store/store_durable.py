"""The contract for stores that outlive a handle and that several processes share."""

from __future__ import annotations

import json
import sys
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from subprocess import PIPE, Popen
from typing import Any

import pytest
from store_concurrency import (
    ABANDON,
    AFTER_HEAD,
    HALF_WAY,
    ONE,
    REFUSE,
    TWO,
    check_mixed_transactions,
)
from store_contract import WAIT_LONG, StoreContract
from store_support import job_submitted

from whirr.events import JobSubmitted, Pending
from whirr.services import Jobs
from whirr.store.protocol import EventStore, InvalidEvent, ViewReader

WRITER = Path(__file__).with_name("store_process.py")
PROCESSES = 4
JOBS_PER_PROCESS = 25


@contextmanager
def writers(url: str, mode: str, count: int, go: Path, n: int) -> Iterator[list[Popen[str]]]:
    """``n`` writer processes that begin once ``go`` exists; killed if still running after."""
    procs = [
        Popen(
            [sys.executable, str(WRITER), url, mode, str(count), str(go)],
            stdout=PIPE,
            stderr=PIPE,
            text=True,
        )
        for _ in range(n)
    ]
    try:
        yield procs
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
            proc.communicate()


def reports(procs: list[Popen[str]]) -> list[dict[str, list[int]]]:
    """Wait for the writers; their JSON reports (fails on a non-zero exit)."""
    found = []
    for proc in procs:
        out, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, err
        found.append(json.loads(out))
    return found


def wait_until_ready(go: Path, n: int) -> None:
    """Wait until ``n`` writers have opened their store, then let them all go."""
    deadline = time.monotonic() + 60
    while len(list(go.parent.glob(f"{go.name}.ready.*"))) < n:
        assert time.monotonic() < deadline, "writers did not start"
        time.sleep(0.01)
    go.touch()


class DurableStoreContract(StoreContract):
    """More behaviour for stores that outlive a handle and that other processes open."""

    def test_reopening_keeps_the_log_and_views(self, backend: Any) -> None:
        first = backend.open()
        jobs = Jobs(first)
        jobs.submit(["true"], "/", check=False, config={"lr": 0.5})
        jobs.claim("w", 60)
        records, views = first.read(), (first.jobs(), first.workers(), first.runs())
        first.close()
        second = backend.open()
        assert second.read() == records
        assert (second.jobs(), second.workers(), second.runs()) == views
        assert second.head() == 2

    def test_a_batch_failing_half_way_leaves_no_trace(self, store: EventStore) -> None:
        unencodable = JobSubmitted(
            job_id=2, command_argv=["x"], workdir="/", run_id="job-2", config={"x": object()}
        )

        def decide(reader: ViewReader) -> Sequence[Pending]:
            return [job_submitted(1), Pending("job-2", unencodable)]

        with pytest.raises(InvalidEvent):
            store.transact(decide)
        assert store.head() == 0
        assert store.job(1) is None
        assert store.append([job_submitted(1)]) == 1
        assert store.job(1) is not None

    def test_concurrent_batches_failing_half_way_leave_no_trace(self, backend: Any) -> None:
        """As the concurrent contract, with decisions whose second event cannot be
        encoded: their first event must not be recorded either."""
        check_mixed_transactions(backend, [ONE, HALF_WAY, TWO, REFUSE, AFTER_HEAD, ABANDON])

    def test_writer_processes_claim_each_job_once(self, backend: Any, tmp_path: Path) -> None:
        """4 processes submit and claim at once; a reader tails the log meanwhile."""
        go = tmp_path / "go"
        reader = backend.open()
        cursor, gaps = 0, []
        with writers(backend.url, "jobs", JOBS_PER_PROCESS, go, PROCESSES) as procs:
            wait_until_ready(go, PROCESSES)
            while any(p.poll() is None for p in procs) or reader.head() > cursor:
                batch = reader.read(after=cursor)
                for rec in batch:
                    if rec.position != cursor + 1:
                        gaps.append((cursor, rec.position))
                    cursor = rec.position
                if not batch:
                    reader.wait(cursor, 0.05)
            done = reports(procs)

        total = PROCESSES * JOBS_PER_PROCESS
        assert gaps == [], "a tailing reader skipped positions"
        assert cursor == reader.head() == 2 * total  # one submit and one claim per job
        assert [r.position for r in reader.read()] == list(range(1, 2 * total + 1))
        submitted = sorted(j for r in done for j in r["submitted"])
        claimed = sorted(j for r in done for j in r["claimed"])
        assert submitted == list(range(1, total + 1))
        assert claimed == list(range(1, total + 1)), "a job was claimed twice or never"
        claims = reader.read(types=["job.claimed"])
        assert sorted(r.event.job_id for r in claims) == claimed  # type: ignore[attr-defined]
        assert reader.job_counts() == {"running": total}

    def test_waiter_is_woken_by_another_process(self, backend: Any, tmp_path: Path) -> None:
        waiter = backend.open()
        after = waiter.head()
        woke: list[bool] = []
        thread = threading.Thread(target=lambda: woke.append(waiter.wait(after, WAIT_LONG)))
        thread.start()
        go = tmp_path / "go"
        go.touch()
        with writers(backend.url, "append", 1, go, 1) as procs:
            (report,) = reports(procs)
        thread.join(WAIT_LONG + 10)
        assert woke == [True]
        assert report["positions"] == [after + 1]
