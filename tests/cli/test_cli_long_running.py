"""The commands that run until stopped (worker, server, dashboard, watch, ``logs -f``,
``events -f``), in every broken project state and with bad arguments: each either gets
ready (says so, or keeps running without a traceback) or exits with one ``Error:`` line,
within the deadline; then it is stopped (SIGINT, like Ctrl+C) and must stop cleanly.

They run as real subprocesses, all of one state at once, so the file takes seconds."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from cli_fuzz_support import STATES, break_project, check_outcome, make_template
from cli_runner import WHIRR

#: Seconds a command has to get ready or fail (its interpreter's start included).
DEADLINE = 10.0
#: command -> what it prints once ready (None: running without a traceback is ready).
COMMANDS: dict[str, tuple[list[str], str | None]] = {
    "worker": (["worker"], "waiting for jobs"),
    "server": (["server", "-p", "0", "-d", "{tmp}/server"], "Worker ready"),
    "dashboard": (["dashboard", "-p", "0"], "Worker ready"),
    "watch": (["watch"], None),
    "logs -f": (["logs", "-f", "2"], None),
    "events -f": (["events", "-f"], None),
}
#: Bad arguments: each must be refused at once with one `Error:` line.
BAD_ARGS = [
    ["worker", "--slots", "9223372036854775808"],
    ["worker", "--gpu", "99999"],
    ["worker", "--gpus", ",,"],
    ["worker", "--kill-grace-period", "nan"],
    ["worker", "--heartbeat-interval", "inf"],
    ["worker", "--id", "\udcff"],
    ["server", "-p", "99999"],
    ["server", "-d", "/proc/x/y"],
    ["server", "--worker-timeout", "nan"],
    ["server", "--host", "\udcff"],
    ["dashboard", "-p", "-1"],
    ["watch", "-i", "nan"],
    ["watch", "-i", "inf"],
    ["watch", "-n", "9223372036854775808"],
    ["watch", "-j", "9223372036854775808"],
    ["logs", "-f", "9223372036854775808"],
    ["events", "-f", "--after", "9223372036854775808"],
]


@dataclass
class Running:
    args: list[str]
    ready: str | None
    proc: subprocess.Popen[bytes]
    out: Path
    started: float = field(default_factory=time.monotonic)

    def text(self) -> str:
        return self.out.read_bytes().decode("utf-8", "replace")


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_template(tmp_path_factory.mktemp("long") / "template")


def start(args: list[str], cwd: Path, home: Path, out: Path, ready: str | None) -> Running:
    env = {**os.environ, "HOME": str(home), "COLUMNS": "100"}
    for name in ("WHIRR_SERVER_URL", "WHIRR_DATA_DIR", "WHIRR_TOKEN", "WHIRR_TRACEBACK"):
        env.pop(name, None)
    with open(out, "wb") as sink:
        proc = subprocess.Popen(
            [*WHIRR, *args],
            cwd=cwd,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=sink,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    return Running(args, ready, proc, out)


def settle(running: list[Running]) -> None:
    """Wait until each has exited or printed its ready line, or the deadline passed."""
    deadline = time.monotonic() + DEADLINE
    while time.monotonic() < deadline:
        if all(r.proc.poll() is not None or (r.ready and r.ready in r.text()) for r in running):
            return
        time.sleep(0.1)


def stop(r: Running) -> int:
    if r.proc.poll() is None:
        os.killpg(r.proc.pid, signal.SIGINT)
        try:
            return r.proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(r.proc.pid, signal.SIGKILL)
            r.proc.wait(timeout=5)
            raise AssertionError(f"whirr {r.args!r} did not stop on SIGINT:\n{r.text()}") from None
    return r.proc.returncode


def judge(r: Running) -> None:
    code = r.proc.poll()
    text = r.text()
    if code is None:  # still running at the deadline: it must have got ready
        assert "Traceback" not in text, (r.args, text)
        if r.ready is not None:
            assert r.ready in text, (r.args, "not ready within the deadline", text)
        stop(r)
        text = r.text()
        assert "Traceback" not in text, (r.args, "on SIGINT", text)
        return
    errors_only = "\n".join(line for line in text.splitlines() if not line.startswith("Main "))
    check_outcome(r.args, code, errors_only, None)


@pytest.mark.parametrize("state", STATES)
def test_long_running_commands_get_ready_or_fail_cleanly(
    template: Path, tmp_path: Path, state: str
) -> None:
    running = []
    try:
        for i, (args, ready) in enumerate(COMMANDS.values()):
            root = tmp_path / f"p{i}"
            shutil.copytree(template, root, symlinks=True)
            break_project(root, state)
            args = [a.replace("{tmp}", str(tmp_path / f"d{i}")) for a in args]
            running.append(start(args, root, tmp_path, tmp_path / f"{i}.out", ready))
        settle(running)
        for r in running:
            judge(r)
    finally:
        for r in running:
            if r.proc.poll() is None:
                os.killpg(r.proc.pid, signal.SIGKILL)
                r.proc.wait(timeout=5)


def test_bad_arguments_are_refused_at_once(template: Path, tmp_path: Path) -> None:
    root = tmp_path / "p"
    shutil.copytree(template, root, symlinks=True)
    running = [
        start(args, root, tmp_path, tmp_path / f"{i}.out", None) for i, args in enumerate(BAD_ARGS)
    ]
    try:
        settle(running)
        for r in running:
            assert r.proc.poll() is not None, (r.args, "still running", r.text())
            assert r.proc.returncode != 0, (r.args, r.text())
            check_outcome(r.args, r.proc.returncode, r.text(), None)
    finally:
        for r in running:
            if r.proc.poll() is None:
                os.killpg(r.proc.pid, signal.SIGKILL)
                r.proc.wait(timeout=5)


def test_the_long_running_commands_are_the_ones_left_out_of_the_fuzz() -> None:
    from cli_fuzz_support import LONG_RUNNING

    assert {(args[0],) for args, _ in COMMANDS.values()} >= LONG_RUNNING
    assert sys.executable  # the subprocesses run this interpreter
