"""The metrics writer on a disk that fills up mid-row, and rows longer than its tail window.

A row whose write is cut short by ENOSPC must not stay in the file as a torn line: the
next row would be glued onto it, and that acknowledged row lost, with ``read_metrics``
failing for the whole file. The disk is a real small tmpfs as root, else a file-size
limit (``disk_faults``)."""

from __future__ import annotations

from pathlib import Path

import msgspec
from disk_faults import run_scenario, small_disk

from whirr.run import read_metrics
from whirr.tracking.metrics import MetricsWriter


def test_a_row_cut_short_by_a_full_disk_is_trimmed_and_no_acknowledged_row_is_lost(
    tmp_path: Path,
) -> None:
    with small_disk(tmp_path, size="1m") as (where, kind):
        out = run_scenario(
            where,
            kind,
            """
            import errno
            from whirr.tracking.metrics import MetricsWriter

            path = where / "metrics.jsonl"
            writer = MetricsWriter(path)
            writer.write({"loss": 1.0}, step=0)
            writer.write({"loss": 0.5}, step=1)
            fill()
            size = path.stat().st_size
            try:
                # Larger than what is left of the file's last page (tmpfs) or the limit:
                # part of it is written before the disk refuses the rest.
                writer.write({"blob": "x" * 20000}, step=2)
            except OSError as exc:
                assert exc.errno in FULL_ERRNOS, exc
                print("refused", errno.errorcode[exc.errno])
            else:
                raise SystemExit("the row went through on a full disk")
            assert path.stat().st_size == size, (path.stat().st_size, size)
            free()
            writer.write({"loss": 0.25}, step=3)  # acknowledged: it must be readable
            writer.close()
            print("done")
            """,
        )
        assert "refused" in out and "done" in out, out
        rows = read_metrics(where / "metrics.jsonl")
    assert [(r["_idx"], r["step"]) for r in rows] == [(0, 0), (1, 1), (2, 3)]
    assert rows[-1]["loss"] == 0.25


def test_resume_after_a_row_longer_than_the_tail_window(tmp_path: Path) -> None:
    path = tmp_path / "metrics.jsonl"
    writer = MetricsWriter(path)
    writer.write({"a": 1}, step=0)
    writer.write({"blob": "y" * 200_000}, step=1)  # over the writer's 64 KiB window
    writer.close()
    resumed = MetricsWriter(path)
    assert resumed.next_index == 2
    resumed.write({"a": 3}, step=2)
    resumed.close()
    assert [r["_idx"] for r in read_metrics(path)] == [0, 1, 2]


def test_resume_trims_a_torn_last_line_longer_than_the_tail_window(tmp_path: Path) -> None:
    path = tmp_path / "metrics.jsonl"
    writer = MetricsWriter(path)
    writer.write({"a": 1}, step=0)
    writer.close()
    with path.open("ab") as fh:  # a crash in the middle of writing a very long row
        fh.write(b'{"_idx":1,"blob":"' + b"z" * 100_000)
    resumed = MetricsWriter(path)
    assert resumed.next_index == 1
    resumed.write({"a": 2}, step=1)
    resumed.close()
    rows = [msgspec.json.decode(line) for line in path.read_bytes().splitlines()]
    assert [r["_idx"] for r in rows] == [0, 1]
