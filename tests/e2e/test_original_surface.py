"""Spellings the original whirr (0.5.3) taught its users, still answered (issue 20)."""

from __future__ import annotations

import os
import subprocess
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
