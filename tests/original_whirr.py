"""The original whirr (0.5.3, from PyPI) in a venv of its own, built once per test session.

The tests that run the original (its client, its worker, its CLI) share the venv: it is
built under the session's base temp dir and reused by every later test that asks for it.
Installing it needs PyPI: without it the tests are skipped locally and fail under CI.
``WHIRR_TEST_ORIGINAL_PYTHON`` may name the python of a venv that has it already.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ORIGINAL = "whirr[server]==0.5.3"  # [server]: httpx, which its client and worker need


def clean_env(home: Path) -> dict[str, str]:
    """An environment with nothing of this checkout or its settings in it."""
    return {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(home), "LANG": "C.UTF-8"}


def original_venv_python(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The python of a venv with the original whirr 0.5.3 (built on the session's first call)."""
    given = os.environ.get("WHIRR_TEST_ORIGINAL_PYTHON")
    if given:
        return Path(given)
    cache = tmp_path_factory.getbasetemp() / "whirr-0.5.3"
    venv = cache / "venv"
    python = venv / "bin" / "python"
    built = cache / "built"  # written once the install succeeded
    if built.exists():
        return python
    cache.mkdir(exist_ok=True)
    steps = (
        [sys.executable, "-m", "venv", "--clear", str(venv)],
        [str(python), "-m", "pip", "install", "-q", "--disable-pip-version-check", ORIGINAL],
    )
    for step in steps:
        try:
            done = subprocess.run(
                step, cwd=cache, env=clean_env(cache), capture_output=True, text=True, timeout=600
            )
            failure = "" if done.returncode == 0 else done.stdout + done.stderr
        except subprocess.TimeoutExpired:
            failure = "timed out"
        if failure:
            message = f"cannot install {ORIGINAL} from PyPI ({' '.join(step[-3:])}): {failure}"
            if os.environ.get("CI") == "true":
                pytest.fail(message)
            pytest.skip(message)
    built.touch()
    return python
