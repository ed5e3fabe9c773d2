"""Code snapshots at submit (``whirr submit --snapshot``): the job runs from a copy of the
repository's files as they were when it was queued, so editing code while a sweep waits
does not change what runs.

The copy holds the git-tracked files with their working-tree content (modifications
included) and the untracked files git does not ignore. It is content-addressed: its
directory is named by a SHA-256 over every path, mode and file content, so submitting
100 jobs from one tree makes one copy, and a copy is never changed once made (it is built
under a temporary name and renamed into place, which is atomic).
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

from whirr.services.errors import InvalidRequest

_GIT_TIMEOUT_S = 60.0


def take_snapshot(workdir: str, snapshots_dir: Path) -> tuple[str, str]:
    """Snapshot the git repository around ``workdir`` into ``snapshots_dir``.

    Returns the directory the job should run in (``workdir``'s place inside the copy) and
    the snapshot's digest."""
    root = Path(_git(workdir, "rev-parse", "--show-toplevel").strip())
    listed = _git(str(root), "ls-files", "-z", "--cached", "--others", "--exclude-standard")
    paths = sorted({p for p in listed.split("\0") if p})
    digest, entries = _manifest(root, paths)
    tree = snapshots_dir / digest
    if not tree.exists():
        _build(root, entries, tree)
    inside = os.path.relpath(os.path.realpath(workdir), os.path.realpath(root))
    return str(tree if inside == "." else tree / inside), digest


def _git(cwd: str, *args: str) -> str:
    try:
        done = subprocess.run(
            ["git", *args],
            cwd=cwd,
            capture_output=True,
            text=True,
            timeout=_GIT_TIMEOUT_S,
            check=False,
        )
    except FileNotFoundError:
        raise InvalidRequest("--snapshot needs git, which is not installed") from None
    except subprocess.TimeoutExpired:
        raise InvalidRequest(f"--snapshot: git {args[0]} took too long") from None
    if done.returncode != 0:
        raise InvalidRequest(
            f"--snapshot needs a git repository; {cwd} is not in one "
            f"({done.stderr.strip() or 'git failed'})"
        )
    return done.stdout


def _manifest(root: Path, paths: list[str]) -> tuple[str, list[tuple[str, str]]]:
    """The snapshot's digest and its (path, kind) entries, kind: file, exec or link."""
    whole = hashlib.sha256()
    entries: list[tuple[str, str]] = []
    for rel in paths:
        full = root / rel
        if full.is_symlink():
            kind, content = "link", os.readlink(full).encode()
        elif full.is_file():
            kind = "exec" if os.access(full, os.X_OK) else "file"
            content = _file_digest(full)
        else:
            continue  # tracked but deleted in the working tree, or a submodule
        entries.append((rel, kind))
        whole.update(b"%s\0%s\0%s\n" % (rel.encode(), kind.encode(), content))
    return whole.hexdigest(), entries


def _file_digest(path: Path) -> bytes:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest().encode()


def _build(root: Path, entries: list[tuple[str, str]], tree: Path) -> None:
    tree.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".building-", dir=tree.parent))
    try:
        for rel, kind in entries:
            target = staging / rel
            target.parent.mkdir(parents=True, exist_ok=True)
            if kind == "link":
                os.symlink(os.readlink(root / rel), target)
            else:
                shutil.copy2(root / rel, target)
        try:
            staging.rename(tree)
        except OSError:
            if not tree.exists():  # not just another submit that built the same copy
                raise
    finally:
        if staging.exists():
            shutil.rmtree(staging, ignore_errors=True)
