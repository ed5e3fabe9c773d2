"""Reproducibility capture: the git state of the code (``git.json``, ``diff.patch``) and
the running interpreter's installed distributions (``requirements.txt``).

Both run at ``init()``, so they are built to be quick: the git commands run in parallel
(one process each, no shell), and requirements come from ``importlib.metadata`` (the
interpreter that actually runs, never a ``pip`` found on PATH).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from pathlib import Path
from typing import Any, ClassVar

#: A git call that takes longer than this is abandoned (a huge repo, a hung filesystem).
GIT_TIMEOUT_S = 5.0
#: Paths whirr writes itself; they never make a checkout dirty.
_OWN_DIR = ".whirr"
_EXCLUDE_OWN = f":(top,exclude,glob)**/{_OWN_DIR}/**"


def capture_git(cwd: str | os.PathLike[str]) -> tuple[dict[str, Any] | None, bytes]:
    """``(git info, diff)`` for the repository holding ``cwd``, or ``(None, b"")`` outside
    a repository or without git. Info keys: commit, short_hash, branch, dirty, remote."""
    return GitCapture(cwd).result()


class GitCapture:
    """The git commands, started at once and collected by ``result()``, so ``init()`` can
    do its other work while they run."""

    _COMMANDS: ClassVar[dict[str, list[str]]] = {
        "head": ["rev-parse", "--verify", "-q", "HEAD"],
        "branch": ["symbolic-ref", "-q", "--short", "HEAD"],
        "status": ["status", "--porcelain", "-z"],
        "remote": ["config", "--get", "remote.origin.url"],
        "diff": ["diff", "--no-color", "--binary", "HEAD", "--", ".", _EXCLUDE_OWN],
    }

    def __init__(self, cwd: str | os.PathLike[str]) -> None:
        self._procs: dict[str, subprocess.Popen[bytes]] = {}
        git = shutil.which("git")
        if git is None:
            return
        env = {**os.environ, "GIT_OPTIONAL_LOCKS": "0", "LC_ALL": "C"}
        try:
            for key, args in self._COMMANDS.items():
                self._procs[key] = subprocess.Popen(
                    [git, *args],
                    cwd=cwd,
                    env=env,
                    stdin=subprocess.DEVNULL,
                    stdout=subprocess.PIPE,
                    stderr=subprocess.DEVNULL,
                )
        except OSError:
            self._reap()

    def result(self) -> tuple[dict[str, Any] | None, bytes]:
        """Wait for the commands (at most ``GIT_TIMEOUT_S`` in all) and parse them."""
        if len(self._procs) != len(self._COMMANDS):
            self._reap()
            return None, b""
        deadline = time.monotonic() + GIT_TIMEOUT_S
        try:
            out = {key: _finish(proc, deadline) for key, proc in self._procs.items()}
        finally:
            self._reap()
        status_code, status_out = out["status"]
        if status_code != 0:
            return None, b""  # not a repository (or git timed out)
        head_code, head = out["head"]
        commit = head.decode().strip() if head_code == 0 else None
        branch_code, branch = out["branch"]
        remote_code, remote = out["remote"]
        diff_code, diff = out["diff"]
        info = {
            "commit": commit,
            "short_hash": commit[:7] if commit else None,
            "branch": branch.decode().strip() if branch_code == 0 else None,
            "dirty": is_dirty(status_out),
            "remote": remote.decode().strip() if remote_code == 0 and remote.strip() else None,
        }
        return info, diff if diff_code == 0 else b""

    def _reap(self) -> None:
        for proc in self._procs.values():
            if proc.poll() is None:
                proc.kill()
            proc.communicate()
        self._procs = {}


def _finish(proc: subprocess.Popen[bytes], deadline: float) -> tuple[int, bytes]:
    try:
        out, _ = proc.communicate(timeout=max(0.0, deadline - time.monotonic()))
    except subprocess.TimeoutExpired:
        return -1, b""
    return proc.returncode, out


def is_dirty(porcelain_z: bytes) -> bool:
    """Whether ``git status --porcelain -z`` lists any change outside ``.whirr/``."""
    entries = porcelain_z.split(b"\0")
    skip_next = False
    for entry in entries:
        if skip_next:  # the original path of a rename or copy
            skip_next = False
            continue
        if len(entry) < 4:
            continue
        code, path = entry[:2], entry[3:].decode(errors="replace")
        if code[:1] in (b"R", b"C"):
            skip_next = True
        parts = Path(path.rstrip("/")).parts
        if _OWN_DIR not in parts:
            return True
    return False


def requirements() -> str:
    """``name==version`` of every distribution the running interpreter can import,
    sorted case-insensitively, one a line."""
    from importlib import metadata

    seen: dict[str, str] = {}
    for dist in metadata.distributions():
        name = dist.metadata["Name"]
        if name and name.lower() not in seen:
            seen[name.lower()] = f"{name}=={dist.version}"
    return "".join(line + "\n" for _, line in sorted(seen.items()))
