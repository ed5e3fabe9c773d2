"""The shipping scanner: what is new in a run directory."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from whirr.shipping import scan
from whirr.shipping.ledger import MAX_WHOLE_FILE, Stamp


def test_line_streams_ship_whole_lines_only(tmp_path: Path) -> None:
    (tmp_path / "metrics.jsonl").write_bytes(b'{"_idx":0}\n{"_idx":1}\n{"_id')
    chunk = scan.stream_chunk(tmp_path, "metrics.jsonl", 0, whole_lines=True)
    assert chunk == b'{"_idx":0}\n{"_idx":1}\n'
    # From the unfinished line: nothing until its newline comes.
    assert scan.stream_chunk(tmp_path, "metrics.jsonl", len(chunk), whole_lines=True) == b""
    with open(tmp_path / "metrics.jsonl", "ab") as fh:
        fh.write(b'x":2}\n')
    rest = scan.stream_chunk(tmp_path, "metrics.jsonl", len(chunk), whole_lines=True)
    assert rest == b'{"_idx":2}\n'


def test_output_log_ships_any_new_bytes(tmp_path: Path) -> None:
    (tmp_path / "output.log").write_bytes(b"epoch 1\nprogress 40%")
    assert scan.stream_chunk(tmp_path, "output.log", 6, whole_lines=False) == (b"1\nprogress 40%")
    assert scan.stream_chunk(tmp_path, "output.log", 100, whole_lines=False) == b""
    assert scan.stream_chunk(tmp_path, "absent.log", 0, whole_lines=False) == b""


def test_chunks_are_bounded_and_a_huge_line_goes_in_pieces(tmp_path: Path) -> None:
    (tmp_path / "metrics.jsonl").write_bytes(b"a" * 10 + b"\n" + b"b" * 30)
    assert scan.stream_chunk(tmp_path, "metrics.jsonl", 0, whole_lines=True, limit=8) == b"a" * 8
    assert scan.stream_chunk(tmp_path, "metrics.jsonl", 8, whole_lines=True, limit=8) == b"aa\n"
    assert scan.stream_chunk(tmp_path, "output.log", 0, whole_lines=False, limit=8) == b""


def test_symlinked_stream_is_never_read(tmp_path: Path) -> None:
    secret = tmp_path / "secret"
    secret.write_bytes(b"password\n")
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    os.symlink(secret, run_dir / "output.log")
    assert scan.stream_chunk(run_dir, "output.log", 0, whole_lines=False) == b""
    assert scan.local_size(run_dir, "output.log") == 0


def test_stream_sizes(tmp_path: Path) -> None:
    (tmp_path / "output.log").write_bytes(b"12345")
    assert scan.stream_sizes(tmp_path) == {
        "output.log": 5,
        "metrics.jsonl": 0,
        "system.jsonl": 0,
    }


def test_whole_files_ship_when_their_stamp_changes(tmp_path: Path) -> None:
    (tmp_path / "meta.json").write_bytes(b'{"status":"running"}')
    (tmp_path / "config.json").write_bytes(b"{}")
    (tmp_path / "notes.txt").write_bytes(b"not a run file")
    first = scan.changed_files(tmp_path, {})
    assert [(f.name, f.data) for f in first] == [
        ("meta.json", b'{"status":"running"}'),
        ("config.json", b"{}"),
    ]
    shipped = {f.name: f.stamp for f in first}
    assert scan.changed_files(tmp_path, shipped) == []
    (tmp_path / "meta.json").write_bytes(b'{"status":"completed"}')
    again = scan.changed_files(tmp_path, shipped)
    assert [(f.name, f.data) for f in again] == [("meta.json", b'{"status":"completed"}')]
    st = os.stat(tmp_path / "meta.json")
    assert again[0].stamp == Stamp(st.st_size, st.st_mtime_ns)


def test_whole_files_too_large_or_symlinked_are_left_out(tmp_path: Path) -> None:
    with open(tmp_path / "diff.patch", "wb") as fh:
        fh.truncate(MAX_WHOLE_FILE + 1)
    os.symlink(tmp_path / "diff.patch", tmp_path / "meta.json")
    assert scan.changed_files(tmp_path, {}) == []


@pytest.mark.parametrize(
    "writing", [".model.pt.123.tmp", "model.pt.tmp", ".ckpt.99.tmp/weights.bin", ".hidden"]
)
def test_artifacts_being_written_are_skipped(tmp_path: Path, writing: str) -> None:
    target = tmp_path / "artifacts" / writing
    target.parent.mkdir(parents=True)
    target.write_bytes(b"half")
    assert scan.finished_artifacts(tmp_path, {}) == []


def test_finished_artifacts_are_found_once_per_version(tmp_path: Path) -> None:
    art = tmp_path / "artifacts"
    (art / "ckpt").mkdir(parents=True)
    (art / "model.pt").write_bytes(b"weights")
    (art / "ckpt" / "step1.bin").write_bytes(b"1")
    os.symlink(tmp_path / "model.pt", art / "link.pt")
    found = scan.finished_artifacts(tmp_path, {})
    assert [a.path for a in found] == ["ckpt/step1.bin", "model.pt"]
    uploaded = {a.path: a.stamp for a in found}
    assert scan.finished_artifacts(tmp_path, uploaded) == []
    (art / "model.pt").write_bytes(b"better weights")
    assert [a.path for a in scan.finished_artifacts(tmp_path, uploaded)] == ["model.pt"]
    assert scan.finished_artifacts(tmp_path / "absent", {}) == []
