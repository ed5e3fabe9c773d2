"""``whirr watch --server``: state from a real server's API, changes from its event stream."""

from __future__ import annotations

import time
from pathlib import Path

from cli_runner import run_cli
from server_process import ServerProcess, wait_for

from whirr.client import WhirrClient
from whirr.watch import render_text
from whirr.watch.app import Watcher
from whirr.watch.sources import ServerSource


def test_server_view_follows_the_event_stream(tmp_path: Path) -> None:
    server = ServerProcess(tmp_path)
    try:
        with WhirrClient(server.url, token=server.token) as client:
            watcher = Watcher(ServerSource(client))
            assert watcher.state.jobs == []
            job = client.submit(["python", "train.py"], str(tmp_path), name="remote-one")
            wait_for(watcher.poll, timeout=20)
            assert [(j.id, j.name, j.status) for j in watcher.state.jobs] == [
                (job.job_id, "remote-one", "queued")
            ]
            text = render_text(watcher.state, width=100)
            assert f"whirr watch  {client.url}  1 queued" in text
            assert "Job #1 remote-one · queued" in text
            time.sleep(0.2)
            assert not watcher.poll()  # quiet server: nothing to redraw
        once = run_cli(
            "watch", "--once", cwd=tmp_path, env={**server.env, "COLUMNS": "100"}, check=True
        )
        assert "remote-one" in once.stdout
    finally:
        server.stop()
