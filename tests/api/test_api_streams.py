"""Streams against a real server: a job's log (followed until the job ends), server-sent
events, ``wait_for_job``."""

from __future__ import annotations

import signal
import subprocess
import threading
import time
from pathlib import Path

import httpx
import pytest
from server_process import ServerProcess

from whirr.client import WhirrClient


def running_job(client: WhirrClient, server: ServerProcess, worker: str) -> tuple[int, int]:
    client.cancel_all_queued()
    job_id = client.submit(["true"], "/tmp").job_id
    job = client.claim(worker)
    assert job is not None and job.id == job_id
    client.started(job_id, worker, job.attempt, 1)
    (server.data_dir / "runs" / job.run_id).mkdir(parents=True, exist_ok=True)
    return job_id, job.attempt


def test_logs_and_follow_until_the_job_ends(client: WhirrClient, server: ServerProcess) -> None:
    job_id, attempt = running_job(client, server, "w-logs")
    log = server.data_dir / "runs" / f"job-{job_id}" / "output.log"
    log.write_bytes(b"line 1\n")
    assert client.logs(job_id) == b"line 1\n"
    assert client.logs(job_id, offset=5) == b"1\n"
    received: list[bytes] = []
    follower = threading.Thread(target=lambda: received.extend(client.follow_logs(job_id)))
    follower.start()
    time.sleep(0.5)
    with log.open("ab") as fh:
        fh.write(b"line 2\n")
    time.sleep(0.5)
    with log.open("ab") as fh:
        fh.write(b"last line\n")
    client.complete(job_id, "w-logs", attempt, 0)
    follower.join(timeout=30)
    assert not follower.is_alive()  # following stops when the job ends
    assert b"".join(received) == b"line 1\nline 2\nlast line\n"


def test_events_stream_replays_and_follows(client: WhirrClient, server: ServerProcess) -> None:
    head = client.status().head
    events = list(client.events(after=0, follow=False))
    assert [e.position for e in events] == sorted(e.position for e in events)
    assert events[-1].position == head and events[0].position == 1
    assert all(e.type == e.event["type"] for e in events)
    only = list(client.events(after=0, follow=False, types=["job.submitted"]))
    assert only and {e.type for e in only} == {"job.submitted"}
    seen: list[str] = []

    def listen() -> None:
        for event in client.events(after=head, types=["job.submitted"]):
            seen.append(event.type)
            return

    listener = threading.Thread(target=listen)
    listener.start()
    time.sleep(0.3)
    client.submit(["true"], "/tmp")
    listener.join(timeout=30)
    assert seen == ["job.submitted"]
    status, body = server.raw(
        "GET", f"/api/v1/events?after={head}&follow=false", headers={"Last-Event-ID": str(head + 1)}
    )
    assert status == 200 and f"id: {head + 1}\n".encode() not in body


def test_wait_for_job_returns_when_it_ends(client: WhirrClient, server: ServerProcess) -> None:
    job_id, attempt = running_job(client, server, "w-wait")
    timer = threading.Timer(0.5, lambda: client.complete(job_id, "w-wait", attempt, 0))
    timer.start()
    job = client.wait_for_job(job_id, timeout=30)
    assert job.status == "completed"
    other, _ = running_job(client, server, "w-wait")
    try:
        client.wait_for_job(other, timeout=0.5)
    except TimeoutError as exc:
        assert "still running" in str(exc)
    else:
        raise AssertionError("wait_for_job should have timed out")


def test_wait_for_job_deadline_bounds_the_whole_call(
    client: WhirrClient, server: ServerProcess
) -> None:
    # The stream is quiet (a keepalive every 15 s): the deadline must not wait for a line.
    job_id, _ = running_job(client, server, "w-deadline")
    start = time.monotonic()
    with pytest.raises(TimeoutError):
        client.wait_for_job(job_id, timeout=0.5)
    assert time.monotonic() - start < 3
    start = time.monotonic()
    head = client.status().head
    assert list(client.events(after=head, deadline=time.monotonic() + 0.5)) == []
    assert time.monotonic() - start < 3


def test_sigterm_ends_open_streams_and_the_server(tmp_path: Path) -> None:
    """SIGTERM with an event stream and a followed log open: both responses end cleanly
    and the process exits at once (not after sanic's 15 s graceful-shutdown timeout)."""
    server = ServerProcess(tmp_path)
    try:
        with WhirrClient(server.url, token=server.token) as client:
            job_id, _ = running_job(client, server, "w-term")
        (server.data_dir / "runs" / f"job-{job_id}" / "output.log").write_bytes(b"x\n")
        opened = {"events": threading.Event(), "logs": threading.Event()}
        outcome: dict[str, str] = {}

        def read(name: str, path: str) -> None:
            try:
                with httpx.stream(
                    "GET",
                    f"{server.url}/api/v1{path}",
                    headers=server.headers(),
                    timeout=httpx.Timeout(5, read=60),
                ) as resp:
                    for chunk in resp.iter_bytes():
                        if chunk:
                            opened[name].set()
                outcome[name] = "ended"
            except httpx.HTTPError as exc:
                outcome[name] = repr(exc)

        def claim() -> None:
            # An idle worker's long-poll, on a connection opened before the streams: its
            # request is in the server's hands before they answer their first bytes.
            with httpx.Client(headers=server.headers(), timeout=httpx.Timeout(5, read=90)) as c:
                assert c.get(f"{server.url}/api/v1/health").status_code == 200
                connected.set()
                try:
                    answer = c.post(
                        f"{server.url}/api/v1/jobs/claim", json={"worker_id": "w-idle", "wait": 60}
                    )
                    outcome["claim"] = f"{answer.status_code} {answer.json()}"
                except httpx.HTTPError as exc:
                    outcome["claim"] = repr(exc)

        connected = threading.Event()
        opened["dashboard"] = threading.Event()
        readers = [threading.Thread(target=claim)]
        readers[0].start()
        assert connected.wait(10)
        readers += [
            threading.Thread(target=read, args=("events", "/events?after=0")),
            threading.Thread(target=read, args=("logs", f"/jobs/{job_id}/logs?follow=true")),
            threading.Thread(target=read, args=("dashboard", "/../ui/stream")),
        ]
        for reader in readers[1:]:
            reader.start()
        for name, event in opened.items():
            assert event.wait(10), f"the {name} stream did not open"
        start = time.monotonic()
        server.proc.send_signal(signal.SIGTERM)
        try:
            # Well below what held it before (sanic's 15 s grace, the claim's 60 s wait),
            # with room for a busy machine.
            code = server.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            raise AssertionError("whirr server still runs 10 s after SIGTERM") from None
        elapsed = time.monotonic() - start
        for reader in readers:
            reader.join(timeout=10)
        assert code == 0, server.output()
        assert elapsed < 10
        assert outcome == {
            "events": "ended",
            "logs": "ended",
            "dashboard": "ended",
            "claim": "200 {'job': None, 'draining': False}",
        }
    finally:
        server.stop()
