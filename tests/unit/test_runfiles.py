"""``whirr.runfiles``: no symlink followed below the base, only regular files read,
listings bounded."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from whirr import runfiles
from whirr.runfiles import RunFile, UnsafePath, open_file, read_from, walk_files


@pytest.fixture
def runs(tmp_path: Path) -> Path:
    run = tmp_path / "runs" / "job-1"
    (run / "artifacts" / "sub").mkdir(parents=True)
    (run / "output.log").write_bytes(b"hello\n")
    (run / "artifacts" / "sub" / "a.bin").write_bytes(b"a")
    (tmp_path / "secret").write_text("secret")
    return tmp_path / "runs"


def test_a_plain_file_is_read(runs: Path) -> None:
    log = RunFile.of(runs, "job-1", "output.log")
    assert read_from(log, 0, 100) == b"hello\n"
    assert read_from(log, 2, 2) == b"ll"
    assert log.stat().st_size == 6


@pytest.mark.parametrize("where", ["file", "run_dir", "middle"])
def test_a_symlink_at_any_component_is_refused(runs: Path, where: str) -> None:
    secret = runs.parent / "secret"
    if where == "file":
        os.symlink(secret, runs / "job-1" / "artifacts" / "s")
        parts = ("job-1", "artifacts", "s")
    elif where == "run_dir":
        (runs.parent / "fake").mkdir()
        (runs.parent / "fake" / "output.log").write_text("secret")
        os.symlink(runs.parent / "fake", runs / "job-2")
        parts = ("job-2", "output.log")
    else:
        os.symlink(runs.parent, runs / "job-1" / "artifacts" / "up")
        parts = ("job-1", "artifacts", "up", "secret")
    with pytest.raises(UnsafePath):
        open_file(runs, parts)


def test_a_fifo_is_refused_without_blocking(runs: Path) -> None:
    os.mkfifo(runs / "job-1" / "pipe")
    with pytest.raises(UnsafePath):
        open_file(runs, ("job-1", "pipe"))
    assert read_from(RunFile.of(runs, "job-1", "pipe"), 0, 10) == b""


def test_names_that_climb_are_refused(runs: Path) -> None:
    for bad in ("..", ".", "", "a/b", "x\x00"):
        with pytest.raises(UnsafePath):
            open_file(runs, ("job-1", bad))


def test_an_absent_file_is_not_found(runs: Path) -> None:
    with pytest.raises(FileNotFoundError):
        open_file(runs, ("job-1", "missing"))
    assert read_from(RunFile.of(runs, "job-9", "output.log"), 0, 10) == b""


def test_listing_skips_symlinks_and_is_bounded(runs: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    art = runs / "job-1" / "artifacts"
    os.symlink("/", art / "root")
    os.symlink(runs.parent / "secret", art / "secret")
    for i in range(5):
        (art / f"f{i}").write_text("x")
    assert [e.path for e in walk_files(runs, ("job-1", "artifacts"))] == [
        "f0", "f1", "f2", "f3", "f4", "sub/a.bin"
    ]  # fmt: skip
    assert len(list(walk_files(runs, ("job-1", "artifacts"), limit=3))) == 3
    deep = art
    for i in range(5):
        deep = deep / f"d{i}"
    deep.mkdir(parents=True)
    (deep / "deep.bin").write_text("x")
    monkeypatch.setattr(runfiles, "MAX_DEPTH", 3)
    assert all(not e.path.startswith("d0/d1/d2") for e in walk_files(runs, ("job-1", "artifacts")))
    assert list(walk_files(runs, ("job-1", "nope"))) == []
