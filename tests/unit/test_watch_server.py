"""``whirr watch --server``: state from a real server's API, changes from its event stream."""

from __future__ import annotations

import time
from pathlib import Path

import httpx
from cli_runner import run_cli
from server_process import ServerProcess, wait_for

from whirr.client import WhirrClient
from whirr.facade.http import HttpWhirr
from whirr.watch import render_text
from whirr.watch.app import Watcher
from whirr.watch.sources import WhirrSource


def test_server_view_follows_the_event_stream(tmp_path: Path) -> None:
    server = ServerProcess(tmp_path)
    try:
        with WhirrClient(server.url, token=server.token) as client:
            watcher = Watcher(WhirrSource(HttpWhirr(client)))
            assert watcher.state.jobs == []
            job = client.submit(["python", "train.py"], str(tmp_path), name="remote-one")
            wait_for(watcher.poll, timeout=20)
            assert [(j.id, j.name, j.status) for j in watcher.state.jobs] == [
                (job.job_id, "remote-one", "queued")
            ]
            text = render_text(watcher.state, width=100)
            assert f"whirr watch  server {server.url}  ·  " in text
            assert "\nJobs  1 queued\n" in text
            assert "Job #1 remote-one · queued" in text
            time.sleep(0.2)
            assert not watcher.poll()  # quiet server: nothing to redraw
        once = run_cli(
            "watch", "--once", cwd=tmp_path, env={**server.env, "COLUMNS": "100"}, check=True
        )
        assert "remote-one" in once.stdout
    finally:
        server.stop()


def test_server_view_reads_the_tail_of_a_long_log(tmp_path: Path) -> None:
    server = ServerProcess(tmp_path)
    try:
        with WhirrClient(server.url, token=server.token) as client:
            job = client.submit(["python", "train.py"], str(tmp_path), name="chatty")
            log = server.data_dir / "runs" / f"job-{job.job_id}" / "output.log"
            log.parent.mkdir(parents=True)
            log.write_bytes(b"".join(b"line %06d\n" % i for i in range(50_000)))
            size = log.stat().st_size
            start, data = client.log_tail(job.job_id, 1000)
            assert (start, data) == (size - 1000, log.read_bytes()[-1000:])
            assert client.log_tail(job.job_id, 10 * size) == (0, log.read_bytes())
            # The server sends only the tail (the client does not cut a whole log).
            raw = httpx.get(
                f"{server.url}/api/v1/jobs/{job.job_id}/logs",
                params={"tail": 1000},
                headers={"Authorization": f"Bearer {server.token}"},
            )
            assert raw.headers["X-Whirr-Offset"] == str(size - 1000) and len(raw.content) == 1000
            watcher = Watcher(WhirrSource(HttpWhirr(client)))
            detail = watcher.state.detail
            assert detail is not None and detail.log_lines[-1] == "line 049999"
            assert "line 000000" not in detail.log_lines
            with log.open("ab") as out:
                out.write(b"the end\n")
            detail = watcher.refresh().detail
            assert detail is not None and detail.log_lines[-2:] == ["line 049999", "the end"]
    finally:
        server.stop()
