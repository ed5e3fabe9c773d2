"""A report for an attempt the worker no longer holds is refused (409), also when the
lease reaper ended that attempt (issue 22, item 5); the same report sent twice is not."""

from __future__ import annotations

from pathlib import Path

import pytest
from server_process import ServerProcess, wait_for

from whirr.client import WhirrClient
from whirr.services.errors import InvalidState


def test_a_report_after_the_reaper_ended_the_job_is_409(tmp_path: Path) -> None:
    server = ServerProcess(tmp_path)
    try:
        with WhirrClient(server.url, token=server.token) as c:
            job_id = c.submit(["true"], "/", max_attempts=1).job_id
            job = c.claim("w-stale", lease_seconds=10)
            assert job is not None and job.id == job_id
            c.started(job_id, "w-stale", job.attempt, 1)
            # No heartbeat: the lease runs out and, with no attempt left, the job fails.
            ended = wait_for(lambda: c.get_job(job_id).status == "failed", timeout=60)
            assert ended
            for report in (
                lambda: c.complete(job_id, "w-stale", job.attempt, 0),
                lambda: c.fail(job_id, "w-stale", job.attempt, "it broke"),
            ):
                with pytest.raises(InvalidState):
                    report()
            assert c.get_job(job_id).exit_code is None  # nothing the stale worker said
    finally:
        server.stop()


def test_the_same_report_twice_is_accepted(tmp_path: Path) -> None:
    server = ServerProcess(tmp_path)
    try:
        with WhirrClient(server.url, token=server.token) as c:
            job_id = c.submit(["true"], "/").job_id
            job = c.claim("w-twice")
            assert job is not None and job.id == job_id
            c.started(job_id, "w-twice", job.attempt, 1)
            c.complete(job_id, "w-twice", job.attempt, 3)
            c.complete(job_id, "w-twice", job.attempt, 3)  # the first answer was lost
            with pytest.raises(InvalidState):
                c.complete(job_id, "w-twice", job.attempt, 0)  # a different story: stale
            assert c.get_job(job_id).exit_code == 3
    finally:
        server.stop()
