"""Running the framework scripts of ``scripts/`` as real processes: directly in a project
(the hook starts its own run) or as a job a real local worker runs."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from cli_runner import run_cli

from whirr.project import Project

SCRIPTS = Path(__file__).resolve().parent / "scripts"
#: A job's script must not find a server or a job of the test's own environment.
CLEARED = ("WHIRR_SERVER_URL", "WHIRR_TOKEN", "WHIRR_JOB_ID", "WHIRR_RUN_ID", "WHIRR_RUN_DIR")


def clean_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in CLEARED}
    env["KERAS_BACKEND"] = "jax"
    env["JAX_PLATFORMS"] = "cpu"
    return env


def last_json(text: str) -> dict[str, Any]:
    """The last line of ``text`` that is a JSON object (what a script printed)."""
    for line in reversed(text.splitlines()):
        if line.startswith("{"):
            value: dict[str, Any] = json.loads(line)
            return value
    raise AssertionError(f"no JSON line in the script's output:\n{text}")


@pytest.fixture
def train(project: Project) -> Callable[..., dict[str, Any]]:
    """Run ``scripts/<script>`` with its arguments in the project; returns what it
    printed (its run id, Keras' History or the library's evaluation record)."""

    def run(script: str, *args: str) -> dict[str, Any]:
        result = subprocess.run(
            [sys.executable, str(SCRIPTS / script), *args],
            cwd=project.root,
            env=clean_env(),
            capture_output=True,
            text=True,
            timeout=240,
        )
        assert result.returncode == 0, result.stderr
        return last_json(result.stdout)

    return run


@pytest.fixture
def train_in_job(project: Project) -> Callable[..., tuple[dict[str, Any], dict[str, Any]]]:
    """Submit ``scripts/<script> args`` as a job named ``name`` and run it with a real
    local worker; returns the job's run (``whirr runs --json``) and what it printed."""

    def run(name: str, script: str, *args: str) -> tuple[dict[str, Any], dict[str, Any]]:
        env = clean_env()
        command = [sys.executable, str(SCRIPTS / script), *args]
        run_cli("submit", "-n", name, "--", *command, cwd=project.root, env=env, check=True)
        run_cli(
            "worker", "--exit-when-empty", "-q", cwd=project.root, env=env, check=True, timeout=240
        )
        runs = json.loads(run_cli("runs", "--json", cwd=project.root, check=True).stdout)["runs"]
        assert len(runs) == 1, runs
        output = (Path(runs[0]["run_dir"]) / "output.log").read_text()
        return runs[0], last_json(output)

    return run
