"""The shipping ledger: atomic, owner-only, round-trips, and survives garbage."""

from __future__ import annotations

import os
import stat
from pathlib import Path

from whirr.shipping import ledger as L


def test_round_trip_keeps_every_field(tmp_path: Path) -> None:
    book = L.Ledger(run_id="job-3", attempt=2, run_dir="/data/runs/job-3")
    book.stream("output.log").local_start = 10
    book.stream("output.log").acked = 5
    book.files["meta.json"] = L.Stamp(120, 1_700_000_000_123_456_789)
    book.artifacts["model.pt"] = L.Stamp(7, 8)
    book.ended = True
    L.save(tmp_path / "shipping", book)

    back = L.load(L.ledger_path(tmp_path / "shipping", "job-3"))
    assert back == book
    assert back is not None and back.streams["output.log"].position == 15


def test_saved_ledger_is_owner_only_and_leaves_no_temp_file(tmp_path: Path) -> None:
    ledger_dir = tmp_path / "shipping"
    L.save(ledger_dir, L.Ledger(run_id="job-1", attempt=1, run_dir="x"))
    L.save(ledger_dir, L.Ledger(run_id="job-1", attempt=1, run_dir="x", ended=True))
    assert sorted(os.listdir(ledger_dir)) == ["job-1.json"]
    assert stat.S_IMODE(os.stat(ledger_dir / "job-1.json").st_mode) == 0o600
    assert stat.S_IMODE(os.stat(ledger_dir).st_mode) == 0o700
    loaded = L.load(ledger_dir / "job-1.json")
    assert loaded is not None and loaded.ended


def test_load_all_skips_garbage_temp_files_and_misnamed_ledgers(tmp_path: Path) -> None:
    ledger_dir = tmp_path / "shipping"
    L.save(ledger_dir, L.Ledger(run_id="job-1", attempt=1, run_dir="a"))
    L.save(ledger_dir, L.Ledger(run_id="job-2", attempt=3, run_dir="b"))
    (ledger_dir / "job-9.json").write_bytes(b"{not json")
    (ledger_dir / ".job-4.json.123.tmp").write_bytes(b"{}")
    (ledger_dir / "job-5.json").write_bytes((ledger_dir / "job-1.json").read_bytes())
    assert [b.run_id for b in L.load_all(ledger_dir)] == ["job-1", "job-2"]
    assert L.load_all(tmp_path / "absent") == []


def test_delete_is_idempotent(tmp_path: Path) -> None:
    L.save(tmp_path, L.Ledger(run_id="job-1", attempt=1, run_dir="a"))
    L.delete(tmp_path, "job-1")
    L.delete(tmp_path, "job-1")
    assert L.load(L.ledger_path(tmp_path, "job-1")) is None
