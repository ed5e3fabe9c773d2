"""Reproducibility capture on a real git repository, and requirements from the interpreter."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from whirr.tracking.repro import capture_git, is_dirty, requirements


def git(repo: Path, *args: str) -> str:
    return subprocess.run(
        ["git", *args], cwd=repo, check=True, capture_output=True, text=True
    ).stdout.strip()


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    root = tmp_path / "repo"
    root.mkdir()
    git(root, "init", "-q", "-b", "trunk")
    git(root, "config", "user.email", "t@example.com")
    git(root, "config", "user.name", "T")
    (root / "train.py").write_text("print('hi')\n")
    git(root, "add", "train.py")
    git(root, "commit", "-q", "-m", "first")
    git(root, "remote", "add", "origin", "https://example.com/lab/model.git")
    return root


def test_clean_checkout_ignores_whirrs_own_directory(repo: Path) -> None:
    (repo / ".whirr" / "runs" / "local-1").mkdir(parents=True)
    (repo / ".whirr" / "runs" / "local-1" / "metrics.jsonl").write_text("{}\n")
    info, diff = capture_git(repo)
    assert info == {
        "commit": git(repo, "rev-parse", "HEAD"),
        "short_hash": git(repo, "rev-parse", "HEAD")[:7],
        "branch": "trunk",
        "dirty": False,
        "remote": "https://example.com/lab/model.git",
    }
    assert diff == b""


def test_changes_make_it_dirty_with_a_diff(repo: Path) -> None:
    (repo / "train.py").write_text("print('changed')\n")
    info, diff = capture_git(repo / ".")
    assert info is not None and info["dirty"] is True
    assert b"-print('hi')" in diff and b"+print('changed')" in diff


def test_untracked_files_make_it_dirty(repo: Path) -> None:
    (repo / "notes.txt").write_text("x")
    info, _ = capture_git(repo)
    assert info is not None and info["dirty"] is True


def test_detached_head_and_subdirectory(repo: Path) -> None:
    git(repo, "checkout", "-q", "--detach")
    (repo / "sub").mkdir()
    info, _ = capture_git(repo / "sub")
    assert info is not None and info["branch"] is None and info["commit"]


def test_outside_a_repository(tmp_path: Path) -> None:
    assert capture_git(tmp_path) == (None, b"")


def test_is_dirty_parses_renames_and_own_paths() -> None:
    assert not is_dirty(b"?? .whirr/\0")
    assert not is_dirty(b"?? sub/.whirr/runs/x\0")
    assert is_dirty(b"R  new.py\0old.py\0")
    assert is_dirty(b" M train.py\0?? .whirr/\0")
    assert not is_dirty(b"")


def test_requirements_come_from_this_interpreter() -> None:
    text = requirements()
    lines = text.splitlines()
    assert any(line.lower().startswith("msgspec==") for line in lines)
    assert any(line.lower().startswith("numpy==") for line in lines)
    names = [line.split("==")[0].lower() for line in lines]
    assert names == sorted(names) and len(set(names)) == len(names)
