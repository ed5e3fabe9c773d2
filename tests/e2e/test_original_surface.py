"""Spellings the original whirr (0.5.3) taught its users, still answered (issue 20)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import httpx
from server_process import WHIRR, ServerProcess


def test_health_answers_at_the_root_without_a_token(tmp_path: Path) -> None:
    server = ServerProcess(tmp_path)
    try:
        answer = httpx.get(f"{server.url}/health", timeout=10)  # no token, like compose checks
        assert answer.status_code == 200 and answer.json()["status"] == "healthy"
        assert httpx.get(f"{server.url}/api/v1/status", timeout=10).status_code == 401
    finally:
        server.stop()


def test_worker_device_is_gpu(tmp_path: Path) -> None:
    """`CUDA_VISIBLE_DEVICES=0 whirr worker --device 0` (the original README): the job
    runs on GPU 0, as with --gpu 0."""
    env = {k: v for k, v in os.environ.items() if k not in ("WHIRR_SERVER_URL", "WHIRR_TOKEN")}

    def whirr(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [*WHIRR, *args], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60
        )

    assert whirr("init").returncode == 0
    assert whirr("submit", "--", "sh", "-c", "echo gpu=$CUDA_VISIBLE_DEVICES").returncode == 0
    done = whirr("worker", "--device", "0", "--exit-when-empty", "-q")
    assert done.returncode == 0, done.stderr
    assert whirr("logs", "1").stdout == "gpu=0\n"


def test_the_original_cli_flags_keep_their_meaning(tmp_path: Path) -> None:
    """`runs --last`, `compare --metrics --no-config`, `export OUT --run ID --limit N`."""
    env = {k: v for k, v in os.environ.items() if k not in ("WHIRR_SERVER_URL", "WHIRR_TOKEN")}

    def whirr(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [*WHIRR, *args], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60
        )

    assert whirr("init").returncode == 0
    for lr in (0.1, 0.2, 0.3):
        script = "; ".join(
            [
                "import whirr",
                f"run = whirr.init(name='lr{lr}', config={{'lr': {lr}}})",
                f"run.log({{'loss': {lr}}})",
                "run.finish()",
            ]
        )
        done = subprocess.run(
            [sys.executable, "-c", script], cwd=tmp_path, env=env, capture_output=True, timeout=60
        )
        assert done.returncode == 0, done.stderr
    ids = [r["id"] for r in json.loads(whirr("runs", "--json").stdout)["runs"]]
    assert len(ids) == 3
    last = json.loads(whirr("runs", "--last", "2", "--json").stdout)["runs"]
    assert [r["id"] for r in last] == ids[:2]

    shown = whirr("compare", ids[0], ids[1], "--metrics", "--no-config", "--json")
    assert shown.returncode == 0, shown.stderr
    compared = json.loads(shown.stdout)
    assert all(run["config"] == {} for run in compared["runs"])
    assert [run["metrics"]["loss"] for run in compared["runs"]] == [0.3, 0.2]
    with_config = json.loads(whirr("compare", ids[0], ids[1], "--json").stdout)
    assert [run["config"]["lr"] for run in with_config["runs"]] == [0.3, 0.2]

    one = whirr("export", "one.json", "--run", ids[2])
    assert one.returncode == 0, one.stderr
    assert [r["id"] for r in json.loads((tmp_path / "one.json").read_text())] == [ids[2]]
    prefix = whirr("export", "all.json", "--run", "local-")  # a prefix: every run it starts
    assert prefix.returncode == 0, prefix.stderr
    assert len(json.loads((tmp_path / "all.json").read_text())) == 3
    assert whirr("export", "two.csv", "-l", "2").returncode == 0
    assert len((tmp_path / "two.csv").read_text().splitlines()) == 3  # header + 2 runs
