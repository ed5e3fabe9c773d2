"""The metrics writer and the readers: one line per log(), _idx, values, torn lines."""

from __future__ import annotations

import re
import signal
import threading
from pathlib import Path

import msgspec
import numpy as np
import pytest

from whirr.run import SkippedLine, last_rows, read_meta, read_metrics, write_meta
from whirr.tracking.metrics import MetricsWriter

TIMESTAMP = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$")


def lines(path: Path) -> list[dict]:
    return [msgspec.json.decode(line) for line in path.read_bytes().splitlines()]


def test_rows_have_idx_timestamp_step_then_user_keys(tmp_path: Path) -> None:
    path = tmp_path / "metrics.jsonl"
    writer = MetricsWriter(path)
    writer.write({"loss": 0.5, "acc": 1}, step=10)
    writer.write({"note": "hi", "ok": True})
    writer.close()
    raw = path.read_bytes().splitlines()
    assert raw[0].startswith(b'{"_idx":0,"_timestamp":"')
    assert raw[0].endswith(b'Z","step":10,"loss":0.5,"acc":1}')
    rows = lines(path)
    assert [r["_idx"] for r in rows] == [0, 1]
    assert all(TIMESTAMP.match(r["_timestamp"]) for r in rows)
    assert "step" not in rows[1] and rows[1]["note"] == "hi" and rows[1]["ok"] is True


def test_nan_and_inf_become_null(tmp_path: Path) -> None:
    writer = MetricsWriter(tmp_path / "m.jsonl")
    writer.write({"a": float("nan"), "b": float("inf"), "c": -float("inf"), "d": np.float32("nan")})
    writer.close()
    row = lines(tmp_path / "m.jsonl")[0]
    assert row["a"] is None and row["b"] is None and row["c"] is None and row["d"] is None


def test_numpy_scalars_and_zero_d_arrays(tmp_path: Path) -> None:
    writer = MetricsWriter(tmp_path / "m.jsonl")
    writer.write(
        {
            "f32": np.float32(0.25),
            "f64": np.float64(1.5),
            "i64": np.int64(7),
            "b": np.bool_(True),
            "zero_d": np.array(3.0),
        },
        step=np.int64(4),
    )  # type: ignore[arg-type]
    writer.close()
    row = lines(tmp_path / "m.jsonl")[0]
    assert row == {**row, "f32": 0.25, "f64": 1.5, "i64": 7, "b": True, "zero_d": 3.0, "step": 4}


class FakeTensor:
    """Something tensor-like: has item() returning a Python float."""

    def item(self) -> float:
        return 0.125


class FloatLike:
    def __float__(self) -> float:
        return 2.5


def test_objects_with_item_or_float(tmp_path: Path) -> None:
    writer = MetricsWriter(tmp_path / "m.jsonl")
    writer.write({"t": FakeTensor(), "f": FloatLike()})
    writer.close()
    row = lines(tmp_path / "m.jsonl")[0]
    assert row["t"] == 0.125 and row["f"] == 2.5


@pytest.mark.parametrize("value", [object(), np.array([1.0, 2.0]), 1j])
def test_unserialisable_value_names_the_key(tmp_path: Path, value: object) -> None:
    writer = MetricsWriter(tmp_path / "m.jsonl")
    with pytest.raises(TypeError, match="'bad'"):
        writer.write({"good": 1.0, "bad": value})
    writer.write({"good": 2.0})  # nothing half-written; the writer still works
    writer.close()
    rows = lines(tmp_path / "m.jsonl")
    assert [(r["_idx"], r["good"]) for r in rows] == [(0, 2.0)]


@pytest.mark.parametrize("step", [1.0, "3", True, None])
def test_step_must_be_an_int(tmp_path: Path, step: object) -> None:
    writer = MetricsWriter(tmp_path / "m.jsonl")
    if step is None:
        writer.write({"x": 1})
        return
    with pytest.raises(TypeError, match="step must be an int"):
        writer.write({"x": 1}, step=step)  # type: ignore[arg-type]


def test_reserved_keys_are_rejected(tmp_path: Path) -> None:
    writer = MetricsWriter(tmp_path / "m.jsonl")
    with pytest.raises(ValueError, match="reserved"):
        writer.write({"_idx": 5})
    with pytest.raises(ValueError, match="step given twice"):
        writer.write({"step": 5}, step=5)
    writer.write({"step": 5})  # a 'step' key alone is the user's business
    assert writer.next_index == 1


def test_write_after_close_raises(tmp_path: Path) -> None:
    writer = MetricsWriter(tmp_path / "m.jsonl")
    writer.close()
    writer.close()
    with pytest.raises(RuntimeError, match="finished"):
        writer.write({"x": 1})


def test_idx_continues_in_an_existing_file(tmp_path: Path) -> None:
    path = tmp_path / "m.jsonl"
    first = MetricsWriter(path)
    for i in range(3):
        first.write({"x": i})
    first.close()
    second = MetricsWriter(path)
    second.write({"x": 3})
    second.close()
    assert [r["_idx"] for r in read_metrics(path)] == [0, 1, 2, 3]


def test_resume_trims_a_torn_last_line(tmp_path: Path) -> None:
    path = tmp_path / "m.jsonl"
    writer = MetricsWriter(path)
    writer.write({"x": 0})
    writer.write({"x": 1})
    writer.close()
    with open(path, "ab") as fh:
        fh.write(b'{"_idx":2,"_timestamp":"2026-01-')  # a crash mid-write
    assert [r["x"] for r in read_metrics(path)] == [0, 1]
    again = MetricsWriter(path)
    again.write({"x": 2})
    again.close()
    assert [(r["_idx"], r["x"]) for r in read_metrics(path)] == [(0, 0), (1, 1), (2, 2)]


def test_threads_never_interleave_and_idx_is_monotonic(tmp_path: Path) -> None:
    path = tmp_path / "m.jsonl"
    writer = MetricsWriter(path)
    threads, per_thread = 8, 500

    def work(t: int) -> None:
        for i in range(per_thread):
            writer.write({"thread": t, "i": i, "pad": "x" * (t * 37)}, step=i)

    pool = [threading.Thread(target=work, args=(t,)) for t in range(threads)]
    for th in pool:
        th.start()
    for th in pool:
        th.join()
    writer.close()
    rows = read_metrics(path)
    assert [r["_idx"] for r in rows] == list(range(threads * per_thread))
    for t in range(threads):
        assert [r["i"] for r in rows if r["thread"] == t] == list(range(per_thread))


class Interrupted(Exception):
    """Raised by the test's signal handler, as KeyboardInterrupt is on Ctrl-C."""


def test_a_raising_signal_handler_never_breaks_the_writer(tmp_path: Path) -> None:
    # Ctrl-C in a notebook: the handler raises inside log(), the user carries on logging.
    # Neither the lock nor an _idx may be left behind, wherever in log() it lands.
    path = tmp_path / "m.jsonl"
    writer = MetricsWriter(path)
    armed = False

    def handler(signum: int, frame: object) -> None:
        if armed:
            raise Interrupted

    previous = signal.signal(signal.SIGALRM, handler)
    interrupted = 0
    try:
        signal.setitimer(signal.ITIMER_REAL, 0.0002, 0.0002)
        for i in range(3_000):
            try:
                armed = True
                writer.write({"i": i}, step=i)
                armed = False
            except Interrupted:
                armed = False
                interrupted += 1
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
    closer = threading.Thread(target=writer.close)
    closer.start()
    closer.join(10)
    assert not closer.is_alive(), "a signal left the writer's lock held"
    assert interrupted > 0
    idx = [r["_idx"] for r in read_metrics(path)]
    assert idx == sorted(set(idx))  # strictly increasing: no row lost its _idx to the next


def test_reader_drops_a_torn_last_line_and_skips_a_damaged_one_saying_so(tmp_path: Path) -> None:
    path = tmp_path / "metrics.jsonl"
    path.write_bytes(b'{"_idx":0,"a":1}\n{"_idx":1,"a":2}\n{"_idx":2,"a"')
    assert read_metrics(path) == [{"_idx": 0, "a": 1}, {"_idx": 1, "a": 2}]
    assert read_metrics(tmp_path) == read_metrics(path)  # the run directory works too
    path.write_bytes(b'{"_idx":0,"a":1}\n{"_idx":1,"a\n{"_idx":2,"a":3}\n')
    # A damaged middle line is skipped, and said with its line number (issue 18).
    with pytest.warns(SkippedLine, match=r"metrics.jsonl: line 2 is not valid JSON"):
        assert read_metrics(path) == [{"_idx": 0, "a": 1}, {"_idx": 2, "a": 3}]
    path.write_bytes(b'{"_idx":0,"a":1}\n7\n{"_idx":2,"a":3}\n')  # JSON, but not a row
    with pytest.warns(SkippedLine, match="line 2 "):
        assert len(read_metrics(tmp_path)) == 2


def test_reader_of_a_missing_file_reads_nothing(tmp_path: Path) -> None:
    assert read_metrics(tmp_path / "nothing.jsonl") == []
    assert read_meta(tmp_path) is None


def test_last_rows_reads_only_the_tail(tmp_path: Path) -> None:
    path = tmp_path / "metrics.jsonl"
    writer = MetricsWriter(path)
    for i in range(5000):
        writer.write({"loss": 1 / (i + 1)}, step=i)
    writer.close()
    tail = last_rows(path, max_bytes=4096)
    assert 0 < len(tail) < 100
    assert tail[-1]["_idx"] == 4999 and tail[-1]["step"] == 4999
    idx = [r["_idx"] for r in tail]
    assert idx == list(range(idx[0], 5000))


def test_write_meta_keeps_keys_and_merges_summary(tmp_path: Path) -> None:
    write_meta(tmp_path, {"id": "r", "status": "running", "summary": {"best": 1}, "git": {"c": 1}})
    write_meta(tmp_path, {"status": "completed", "summary": {"final": 2}})
    meta = read_meta(tmp_path)
    assert meta == {
        "id": "r",
        "status": "completed",
        "summary": {"best": 1, "final": 2},
        "git": {"c": 1},
    }
    assert not list(tmp_path.glob(".meta.json*"))
