"""The routes a tracked script records its run through under a remote worker:
``POST /runs/{id}/attach``, ``/summary``, ``/artifacts``, against a real server."""

from __future__ import annotations

import os

import pytest
from server_process import ServerProcess

from whirr.client import WhirrClient
from whirr.services.errors import InvalidRequest, InvalidState, NotFound


def running_run(client: WhirrClient, worker: str, **submit: object) -> str:
    """The run of a job a (pretend) worker claimed and started."""
    client.cancel_all_queued()
    job_id = client.submit(["true"], "/tmp", **submit).job_id  # type: ignore[arg-type]
    job = client.claim(worker)
    assert job is not None and job.id == job_id
    client.started(job_id, worker, job.attempt, 4242)
    return job.run_id


def test_attach_summary_and_artifacts_reach_the_run(
    server: ServerProcess, client: WhirrClient
) -> None:
    run_id = running_run(
        client, "w-events", name="job-name", config={"lr": 0.1, "bs": 8}, tags=["from-job"]
    )
    head = client.status().head
    git = {"commit": "abc", "short_hash": "abc", "branch": "main", "dirty": False, "remote": None}
    run = client.attach_run(
        run_id,
        name="script-name",
        config={"bs": 32, "seed": 1},
        tags=["from-script", "from-job"],
        hostname="gpu-7",
        pid=99,
        git=git,
    )
    # As a local attach: the job's name wins, config merges over the job's, tags join.
    assert (run.name, run.status, run.hostname, run.git) == ("job-name", "running", "gpu-7", git)
    assert run.config == {"lr": 0.1, "bs": 32, "seed": 1}
    assert run.tags == ["from-job", "from-script"]

    client.update_summary(run_id, {"best": 0.5, "epoch": 1})
    client.update_summary(run_id, {"best": 0.25})
    artifacts = server.data_dir / "runs" / run_id / "artifacts"
    (artifacts / "ckpt").mkdir(parents=True)
    (artifacts / "model.pt").write_bytes(b"weights")
    (artifacts / "ckpt" / "a.bin").write_bytes(b"abc")
    client.record_artifact(run_id, "model.pt", 7)
    client.record_artifact(run_id, "ckpt", 3)  # a saved directory
    shown = client.get_run(run_id)
    assert shown.summary == {"best": 0.25, "epoch": 1}
    assert [(a.path, a.size) for a in shown.artifacts] == [("model.pt", 7), ("ckpt", 3)]

    # The same events the local library appends, in the server's log.
    events = [e for e in client.events(after=head, follow=False) if e.event.get("run_id") == run_id]
    assert [e.type for e in events] == [
        "run.started",
        "run.summary_updated",
        "run.summary_updated",
        "run.artifact_saved",
        "run.artifact_saved",
    ]
    assert events[0].event["pid"] == 99 and events[0].stream == f"run-{run_id}"


def test_only_known_runs_by_exact_id_take_events(client: WhirrClient) -> None:
    run_id = running_run(client, "w-exact")
    for call in (
        lambda r: client.attach_run(r),
        lambda r: client.update_summary(r, {"x": 1}),
        lambda r: client.record_artifact(r, "model.pt", 1),
    ):
        with pytest.raises(NotFound):
            call("job-999999")
        with pytest.raises(NotFound):
            call(run_id[:-1])  # a prefix is not enough for a write
        with pytest.raises(InvalidRequest):
            call("a..b")


def test_an_ended_run_refuses_a_late_attach_but_takes_a_summary(client: WhirrClient) -> None:
    run_id = running_run(client, "w-ended")
    job = client.list_jobs("running")[0]
    client.complete(job.id, "w-ended", job.attempt, 0)
    with pytest.raises(InvalidState, match="already ended"):
        client.attach_run(run_id, name="late")
    client.update_summary(run_id, {"final": 1.0})
    run = client.get_run(run_id)
    assert (run.status, run.summary) == ("completed", {"final": 1.0})


def test_artifacts_must_exist_inside_the_runs_artifacts_dir(
    server: ServerProcess, client: WhirrClient
) -> None:
    run_id = running_run(client, "w-paths")
    run_dir = server.data_dir / "runs" / run_id
    (run_dir / "artifacts").mkdir(parents=True, exist_ok=True)
    (run_dir / "output.log").write_text("not an artifact")
    (server.root / "secret.txt").write_text("top secret")
    os.symlink(server.root / "secret.txt", run_dir / "artifacts" / "link.txt")
    os.symlink(server.root, run_dir / "artifacts" / "linkdir")
    with pytest.raises(NotFound):
        client.record_artifact(run_id, "missing.pt", 1)
    for bad in (
        "../output.log",
        "../../../secret.txt",
        "/etc/passwd",
        "a//b",
        "./x",
        "link.txt",
        "linkdir",
        "linkdir/secret.txt",
        "sub\\..\\..\\output.log",
    ):
        with pytest.raises(InvalidRequest):
            client.record_artifact(run_id, bad, 1)
    assert client.get_run(run_id).artifacts == []


@pytest.mark.parametrize(
    ("route", "payload", "status"),
    [
        ("summary", b"", 422),  # summary is required
        ("summary", b'{"summary": [1, 2]}', 422),
        ("summary", b'{"summary": {"a": 1}', 400),  # not JSON
        ("artifacts", b'{"path": "", "size": 1}', 422),
        ("artifacts", b'{"path": "m.pt", "size": -1}', 422),
        ("artifacts", b'{"path": "m.pt"}', 422),
        ("attach", b'{"tags": "not-a-list"}', 422),
        ("attach", b'{"pid": -5}', 422),
        ("attach", b'{"name": "a\\u0000b"}', 422),
    ],
)
def test_bad_bodies_are_4xx_with_a_detail(
    server: ServerProcess, client: WhirrClient, route: str, payload: bytes, status: int
) -> None:
    run_id = running_run(client, f"w-bad-{route}")
    got, body = server.raw(
        "POST",
        f"/api/v1/runs/{run_id}/{route}",
        payload,
        headers={"Content-Type": "application/json"},
    )
    assert got == status, body
    assert b"detail" in body
