"""What the CLI fuzz tests share: the command tree, argument values worth trying, broken
project states, and the one rule every command obeys.

The rule: a command either succeeds (exit 0) or exits non-zero with exactly one line
starting ``Error:`` on stderr (click's usage lines may come before it); never a
traceback, never an exception escaping the command, never a hang.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import click
from click.testing import CliRunner, Result

from whirr.cli.main import cli

#: Commands that run until stopped; the fuzz drives them in subprocesses instead.
LONG_RUNNING = {("worker",), ("server",), ("dashboard",), ("watch",)}
#: Options that make a command follow forever (``logs -f``, ``events -f``).
FOLLOW = {"-f", "--follow"}
#: Paths the fuzz may hand to a command that writes: never one outside the example's
#: directory but these, which nothing can create or replace.
SAFE_ABSOLUTE = ["/proc/x", "/proc/1/x/y", "/nonexistent-whirr/x"]

#: Values that broke commands once, or sit on a boundary.
SPECIAL_VALUES = [
    "",
    " ",
    "0",
    "-1",
    "1",
    "#1",
    "job-1",
    "1.5",
    "9223372036854775807",
    "9223372036854775808",
    "-9223372036854775809",
    "1" + "0" * 30,
    "9" * 400,
    "nan",
    "NaN",
    "inf",
    "-inf",
    ".inf",
    "1e400",
    ",,",
    ",",
    "#",
    "\udcff",
    "a\udcfeb",
    "\u00e9\u4e2d",
    "x" * 5000,
    "\n",
    "a\nb",
    "-",
    "=",
    "a=b",
    "priority=high",
    "env=1",
    "gpus=1.5",
    "after_any=7",
    "retries=1000",
    "max_attempts=0",
    "timeout_seconds=nan",
    "http://127.0.0.1:9",
    "ftp://x",
    "s.yaml",
    "bin.yaml",
    "missing.yaml",
    "ab1",
    "sw",
    "runs",
    "metrics",
    "SELECT 1",
    "SELECT * FROM runs",
    "COPY (SELECT 1) TO 'copied.csv'",
    "status = 'completed'",
    "lr > 0",
    "'",
    '"',
    "%s",
    "{{seed}}",
    "${HOME}",
    *SAFE_ABSOLUTE,
]


@dataclass(frozen=True)
class Command:
    """A command of the tree: its words (``("sweep", "run")``) and click object."""

    path: tuple[str, ...]
    command: click.Command


def command_tree() -> list[Command]:
    """Every command and subcommand of ``whirr``, found by walking the click groups."""
    found: list[Command] = []

    def walk(command: click.Command, path: tuple[str, ...]) -> None:
        if path:
            found.append(Command(path, command))
        if isinstance(command, click.Group):
            ctx = click.Context(command)
            for name in command.list_commands(ctx):
                sub = command.get_command(ctx, name)
                assert sub is not None
                walk(sub, (*path, name))

    walk(cli, ())
    return found


# -- project states -------------------------------------------------------------------------
STATES = [
    "ok",
    "no-project",
    "no-config",
    "garbage-config",
    "binary-config",
    "empty-db",
    "garbage-db",
    "whirr-is-a-file",
]


def make_template(root: Path) -> Path:
    """A project with jobs, a finished run, a sweep and an ablation study, plus the
    files the values name (``s.yaml``, ``bin.yaml``); copied for every example."""
    root.mkdir(parents=True)
    env = {**os.environ, "HOME": str(root.parent), "WHIRR_SERVER_URL": ""}
    env.pop("WHIRR_SERVER_URL")

    def whirr(*args: str) -> None:
        subprocess.run(
            [sys.executable, "-m", "whirr.cli.main", *args],
            cwd=root,
            env=env,
            check=True,
            capture_output=True,
            timeout=60,
        )

    (root / "s.yaml").write_text("program: echo\nparameters: {lr: [1, 2]}\n")
    (root / "bin.yaml").write_bytes(b"\x00\xff\xfe binary \x80")
    whirr("init")
    whirr("submit", "-n", "first", "-t", "a,b", "--", "echo", "hello")
    whirr("worker", "--exit-when-empty", "-q")
    whirr("submit", "--", "echo", "queued")
    whirr("sweep", "run", "-p", "sw", "s.yaml")
    whirr("ablate", "init", "ab1", "-m", "loss", "-r", "2")
    whirr("ablate", "add", "ab1", "lr=1", "-n", "hot")
    return root


def break_project(root: Path, state: str) -> None:
    """Put the project copied at ``root`` into ``state`` (see ``STATES``)."""
    dot = root / ".whirr"
    if state == "no-project":
        shutil.rmtree(dot)
    elif state == "no-config":
        (dot / "config.yaml").unlink()
    elif state == "garbage-config":
        (dot / "config.yaml").write_text("heartbeat_timeout: [this is: not\n  a config")
    elif state == "binary-config":
        (dot / "config.yaml").write_bytes(b"\x00\xff\xfe\x80 binary")
    elif state == "empty-db":
        for name in os.listdir(dot):
            if name.startswith("whirr.db"):
                (dot / name).unlink()
        (dot / "whirr.db").write_bytes(b"")
    elif state == "garbage-db":
        for name in os.listdir(dot):
            if name.startswith("whirr.db"):
                (dot / name).unlink()
        (dot / "whirr.db").write_bytes(b"this is not a database\n" * 200)
    elif state == "whirr-is-a-file":
        shutil.rmtree(dot)
        dot.write_text("not a directory\n")
    else:
        assert state == "ok", state


@contextlib.contextmanager
def project_copy(template: Path, into: Path, state: str) -> Iterator[Path]:
    """A fresh copy of ``template`` in ``state``, the current directory while in use."""
    root = into / "proj"
    shutil.copytree(template, root, symlinks=True)
    break_project(root, state)
    with contextlib.chdir(root):
        try:
            yield root
        finally:
            os.chdir(into)
            shutil.rmtree(root, ignore_errors=True)


# -- running and judging -----------------------------------------------------------------
class Hang(BaseException):
    """A command ran past its time (a BaseException, so no handler swallows it)."""


@contextlib.contextmanager
def deadline(seconds: float) -> Iterator[None]:
    """Raise ``Hang`` in this (the main) thread once ``seconds`` have passed."""

    def expire(signum: int, frame: object) -> None:
        raise Hang(f"still running after {seconds}s")

    previous = signal.signal(signal.SIGALRM, expire)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def invoke(args: list[str], seconds: float = 20) -> Result:
    """Run ``whirr ARGS`` in this process, as ``whirr`` would (prog name, no env URL)."""
    runner = CliRunner()
    env = {"WHIRR_SERVER_URL": None, "WHIRR_DATABASE_URL": None, "WHIRR_TRACEBACK": None}
    try:
        with deadline(seconds):
            return runner.invoke(cli, args, prog_name="whirr", env=env, input="")
    except Hang:
        raise AssertionError(f"whirr {args!r} still running after {seconds}s") from None


def check_outcome(args: list[str], exit_code: int, stderr: str, exception: object) -> None:
    """The rule (see the module's docstring)."""
    shown = f"whirr {args!r}: exit {exit_code}\n{stderr[-3000:]}"
    assert "Traceback" not in stderr, shown
    # The CLI's last resort turns any exception into one line; the fuzz wants the cause
    # fixed, so that line counts as a failure here.
    assert "Error: internal error" not in stderr, shown
    assert exception is None or isinstance(exception, SystemExit), (shown, repr(exception))
    if exit_code != 0:
        errors = [line for line in stderr.splitlines() if line.startswith("Error:")]
        if exit_code == 2 and not errors and "\nCommands:\n" in stderr:
            return  # a group given no subcommand shows its help (click's way)
        assert len(errors) == 1, shown


def check_result(args: list[str], result: Result) -> None:
    check_outcome(args, result.exit_code, result.stderr, result.exception)
