"""Job routes against a real server: SPEC shapes, long-poll claims, fencing, cancel, retry,
and workers written for the original API (no ``attempt``, no ``started``)."""

from __future__ import annotations

import threading
import time

import pytest
from server_process import ServerProcess

from whirr.client import WhirrClient
from whirr.services.errors import InvalidState, LeaseLost, NotFound

JOB_KEYS = {
    "id",
    "name",
    "command_argv",
    "workdir",
    "config",
    "tags",
    "status",
    "attempt",
    "worker_id",
    "created_at",
    "started_at",
    "finished_at",
    "exit_code",
    "run_id",
    "lease_expires_at",
    "env",
    "timeout_seconds",
}


def drain(client: WhirrClient) -> None:
    """Cancel whatever an earlier test left queued, so claims see only this test's jobs."""
    client.cancel_all_queued()


def test_submit_and_read_back_in_the_spec_shapes(server: ServerProcess) -> None:
    with server.http() as http:
        resp = http.post(
            "/jobs",
            json={
                "command_argv": ["echo", "hi"],
                "workdir": "/tmp",
                "name": "n",
                "config": {"lr": 0.1},
                "tags": ["a"],
            },
        )
        assert resp.status_code == 200
        body = resp.json()
        assert set(body) >= {"job_id", "run_id", "run_dir", "message"}
        assert body["run_id"] == f"job-{body['job_id']}"
        assert body["run_dir"] == str(server.data_dir / "runs" / body["run_id"])
        job = http.get(f"/jobs/{body['job_id']}").json()
        assert set(job) >= JOB_KEYS
        assert (job["status"], job["attempt"], job["config"], job["tags"]) == (
            "queued",
            1,
            {"lr": 0.1},
            ["a"],
        )
        listed = http.get("/jobs", params={"status": "active"}).json()["jobs"]
        assert body["job_id"] in [j["id"] for j in listed]
        status = http.get("/status").json()
        assert set(status) >= {
            "queued",
            "running",
            "completed",
            "failed",
            "workers_online",
            "workers_total",
        }
        assert http.get("/jobs/999999").status_code == 404
        assert http.get("/jobs/999999").json() == {"detail": "no job #999999"}


def test_a_long_polling_claim_gets_a_job_submitted_while_it_waits(client: WhirrClient) -> None:
    drain(client)
    got: list[object] = []
    waiter = threading.Thread(target=lambda: got.append(client.claim("poller", wait=20)))
    waiter.start()
    time.sleep(0.5)  # the claim is now waiting on the server
    submitted = client.submit(["true"], "/tmp")
    waiter.join(timeout=30)
    job = got[0]
    assert job is not None and job.id == submitted.job_id  # type: ignore[attr-defined]
    assert client.claim("poller", wait=0) is None  # nothing else queued: an immediate null


def test_fencing_rejects_reports_for_an_attempt_the_worker_does_not_hold(
    client: WhirrClient,
) -> None:
    drain(client)
    job_id = client.submit(["true"], "/tmp").job_id
    job = client.claim("w-fence", lease_seconds=30)
    assert job is not None and job.id == job_id and job.lease_expires_at is not None
    client.started(job_id, "w-fence", job.attempt, 1234)
    beat = client.heartbeat(job_id, "w-fence", job.attempt, 30)
    assert beat.success and not beat.cancel_requested
    with pytest.raises(LeaseLost):
        client.heartbeat(job_id, "w-fence", job.attempt + 1, 30)
    with pytest.raises(LeaseLost):
        client.heartbeat(job_id, "someone-else", job.attempt, 30)
    with pytest.raises(LeaseLost):
        client.complete(job_id, "w-fence", job.attempt + 1, 0)
    assert client.get_job(job_id).status == "running"
    client.complete(job_id, "w-fence", job.attempt, 0)
    # The same report again (its answer got lost) is fine; anything later is not.
    client.complete(job_id, "w-fence", job.attempt, 0)
    with pytest.raises(LeaseLost):
        client.heartbeat(job_id, "w-fence", job.attempt, 30)
    done = client.get_job(job_id)
    assert (done.status, done.exit_code) == ("completed", 0)
    run = client.get_run(done.run_id)
    assert (run.status, run.job_id) == ("completed", job_id)


def test_exit_codes_decide_the_outcome_and_fail_reports_fail(client: WhirrClient) -> None:
    drain(client)
    first = client.submit(["false"], "/tmp").job_id
    second = client.submit(["missing-program"], "/tmp").job_id
    a = client.claim("w-exit")
    assert a is not None and a.id == first
    client.complete(first, "w-exit", a.attempt, 3, error_message="boom")
    b = client.claim("w-exit")
    assert b is not None and b.id == second
    client.fail(second, "w-exit", b.attempt, "command not found", exit_code=0)
    assert (client.get_job(first).status, client.get_job(first).exit_code) == ("failed", 3)
    failed = client.get_job(second)
    assert (failed.status, failed.error) == ("failed", "command not found")


def test_cancel_reaches_the_worker_on_its_heartbeat_and_ends_cancelled(client: WhirrClient) -> None:
    drain(client)
    queued = client.submit(["sleep", "100"], "/tmp").job_id
    running = client.submit(["sleep", "100"], "/tmp").job_id
    job = client.claim("w-cancel")
    assert job is not None and job.id == queued
    client.started(queued, "w-cancel", job.attempt, 99)
    assert client.cancel(running).previous_status == "queued"
    assert client.get_job(running).status == "cancelled"
    answer = client.cancel(queued)
    assert (answer.previous_status, answer.status) == ("running", "running")
    assert client.heartbeat(queued, "w-cancel", job.attempt, 30).cancel_requested
    client.complete(queued, "w-cancel", job.attempt, -15)
    assert client.get_job(queued).status == "cancelled"
    with pytest.raises(InvalidState):
        client.cancel(queued)  # already ended


def test_cancel_all_and_retry(client: WhirrClient) -> None:
    drain(client)
    ids = [client.submit(["true"], "/tmp").job_id for _ in range(3)]
    done = client.cancel_all_queued()
    assert done.cancelled == ids and done.count == 3
    again = client.retry(ids[0])
    retried = client.get_job(again.job_id)
    assert (retried.status, retried.parent_job_id, retried.attempt) == ("queued", ids[0], 2)
    with pytest.raises(InvalidState):
        client.retry(again.job_id)  # queued: nothing to retry
    with pytest.raises(NotFound):
        client.retry(10**9)


def test_old_workers_without_attempt_or_started_still_work(server: ServerProcess) -> None:
    with server.http() as http:
        http.post("/jobs/cancel-all")
        job_id = http.post("/jobs", json={"command_argv": ["true"], "workdir": "/tmp"}).json()[
            "job_id"
        ]
        assert http.post(
            "/workers/register", json={"worker_id": "old", "hostname": "h", "gpu_ids": [0]}
        ).json()["success"]
        job = http.post("/jobs/claim", json={"worker_id": "old", "gpu_id": 0}).json()["job"]
        assert job["id"] == job_id
        beat = http.post(
            f"/jobs/{job_id}/heartbeat", json={"worker_id": "old", "lease_seconds": 60}
        )
        assert beat.status_code == 200 and set(beat.json()) == {
            "success",
            "lease_expires_at",
            "cancel_requested",
        }
        done = http.post(f"/jobs/{job_id}/complete", json={"worker_id": "old", "exit_code": 0})
        assert done.status_code == 200 and done.json()["success"] is True
        assert http.get(f"/jobs/{job_id}").json()["status"] == "completed"
        run = http.get(f"/runs/job-{job_id}").json()
        assert (run["status"], run["hostname"]) == ("completed", "h")
        workers = {w["id"]: w for w in http.get("/workers").json()["workers"]}
        assert set(workers["old"]) >= {
            "id",
            "hostname",
            "gpu_id",
            "status",
            "current_job_id",
            "heartbeat_at",
        }
        assert (workers["old"]["gpu_id"], workers["old"]["status"]) == (0, "idle")
        assert http.post("/workers/unregister", json={"worker_id": "old"}).status_code == 200
        assert http.post("/workers/unregister", json={"worker_id": "never"}).status_code == 404


def test_a_long_poll_picks_up_a_retry_once_its_backoff_ends(client: WhirrClient) -> None:
    drain(client)
    job_id = client.submit(["false"], "/tmp", retries=1, retry_delay=1).job_id
    first = client.claim("w-retry")
    assert first is not None and first.id == job_id
    client.complete(job_id, "w-retry", first.attempt, 1)
    assert client.get_job(job_id).status == "queued"  # backing off: no event will announce it
    again = client.claim("w-retry", wait=20)
    assert again is not None and (again.id, again.attempt) == (job_id, first.attempt + 1)
