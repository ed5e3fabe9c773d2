"""Running the real ``whirr`` CLI in a subprocess, for tests."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

WHIRR = [sys.executable, "-m", "whirr.cli.main"]


def run_cli(
    *args: str,
    cwd: Path,
    env: dict[str, str] | None = None,
    check: bool = False,
    timeout: float = 60,
) -> subprocess.CompletedProcess[str]:
    """Run the real ``whirr`` CLI in a subprocess."""
    full_env = {**os.environ, **(env or {})}
    result = subprocess.run(
        [*WHIRR, *args], cwd=cwd, env=full_env, capture_output=True, text=True, timeout=timeout
    )
    if check and result.returncode != 0:
        raise AssertionError(f"whirr {' '.join(args)} failed: {result.stderr}")
    return result
