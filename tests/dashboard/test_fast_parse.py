"""The polars fast path for big blocks of metric rows: the same columns as reading row by
row, or None (never a different answer)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import msgspec
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dashboard.demo import write_metrics
from whirr.dashboard import fast, series
from whirr.dashboard.series import Columns, read_new_lines


def lines(rows: list[dict[str, Any]], spaced: bool = False) -> bytes:
    """JSONL as whirr writes it (compact), or as ``json.dumps`` does (``spaced``)."""
    encode = json.dumps if spaced else (lambda r: msgspec.json.encode(r).decode())
    return "".join(encode(r) + "\n" for r in rows).encode()


def row_by_row(block: bytes) -> tuple[int, int, dict[str, Any]]:
    columns = Columns()
    columns.extend(series._parse(block))
    return columns.snapshot()


def fast_path(block: bytes) -> tuple[int, int, dict[str, Any]] | None:
    parsed = fast.parse(block)
    if parsed is None:
        return None
    columns = Columns()
    columns.append(parsed.rows, parsed.columns)
    return columns.snapshot()


def assert_same(block: bytes) -> bool:
    """The fast path's columns equal the row-by-row ones; True when it took the block."""
    got, want = fast_path(block), row_by_row(block)
    if got is None:
        return False
    assert got[1] == want[1]
    assert sorted(got[2]) == sorted(want[2])
    for key, column in want[2].items():
        np.testing.assert_array_equal(got[2][key], column, err_msg=key)
    return True


def training(n: int) -> list[dict[str, Any]]:
    """Rows as a training loop logs them: a loss every step, a validation loss every 50
    steps (first seen long after the first lines), NaN losses (written as null)."""
    rows: list[dict[str, Any]] = []
    for i in range(n):
        row: dict[str, Any] = {"_idx": i, "_timestamp": f"2024-01-01T00:00:{i % 60:02d}.5Z"}
        row |= {"step": i, "loss": None if i % 97 == 0 else 1 / (i + 1)}
        if i % 50 == 49:
            row["val/loss"] = 0.5 + i
        if i == 1234:
            row["lr"] = 3  # an int where the others are floats: charted the same
        rows.append(row)
    return rows


@pytest.mark.parametrize("spaced", [False, True])
def test_numeric_rows_take_the_fast_path_with_late_and_sparse_keys(spaced: bool) -> None:
    assert assert_same(lines(training(3000), spaced))


def test_a_key_that_only_ever_holds_null_is_no_column() -> None:
    rows = training(200)
    rows[150]["grad_norm"] = None
    block = lines(rows)
    assert assert_same(block)
    parsed = fast.parse(block)
    assert parsed is not None and "grad_norm" not in parsed.columns


def test_time_columns_are_made_only_when_asked_for() -> None:
    parsed = fast.parse(lines(training(100)))
    assert parsed is not None and callable(parsed.columns["_time"])
    seconds = parsed.columns["_time"]()  # type: ignore[operator]
    assert seconds[1] - seconds[0] == 1.0


@pytest.mark.parametrize(
    "odd",
    [
        {"loss": "diverged"},  # a string under a numeric key
        {"loss": True},  # bools are not charted
        {"phase": "eval"},  # a string under a new key
        {"hparams": {"lr": 0.1}},  # an object
        {"hist": [1, 2]},  # an array
        {"note": 'say "hi"'},  # a backslash (an escaped quote) anywhere
        {"_timestamp": 5},  # a timestamp that is not text
    ],
)
def test_anything_else_goes_row_by_row_with_the_same_result(odd: dict[str, Any]) -> None:
    rows = training(300)
    rows[250] |= odd
    block = lines(rows)
    got = fast_path(block)
    assert got is None or assert_same(block)
    if "_timestamp" not in odd:
        assert got is None


@pytest.mark.parametrize("mark", [":n", ": n"])
def test_a_null_mark_inside_a_timestamp_cannot_hide_a_key(mark: str) -> None:
    # The timestamp's colon before "n" would be counted both as a colon of a timestamp
    # and as a null's; without care, that one colon too many on the right side of the
    # count would pass for the value of a key first seen in this line.
    rows = training(300)
    rows[250] |= {"_timestamp": f"2024-01-01T00:00{mark}ow", "late": 7.0}
    block = lines(rows)
    assert fast_path(block) is None or assert_same(block)


def test_a_garbled_line_or_a_blank_one_goes_row_by_row() -> None:
    good = lines(training(100))
    assert fast.parse(good + b"not json\n" + good) is None
    blank = good + b"\n" + lines([{"_idx": 100, "step": 100, "loss": 1.0, "new": 2.0}])
    assert fast.parse(blank) is None or assert_same(blank)


def test_keys_found_in_one_block_are_tried_first_on_the_next() -> None:
    rows = training(400)
    first = fast.parse(lines(rows[:200]))
    assert first is not None and "val/loss" in first.keys
    later = fast.parse(lines(rows[200:]), first.keys)
    assert later is not None and set(later.columns) >= {"val/loss", "loss", "_time"}


numbers = st.one_of(
    st.none(), st.integers(-(2**53), 2**53), st.floats(allow_nan=False, allow_infinity=False)
)
#: Values and keys chosen to trouble the colon count: colons and "n" inside strings and
#: keys, bools, empty strings.
values = st.one_of(numbers, st.sampled_from(["x", "a:null", ":n", "", True, False]))


def numbered(rows: list[dict[str, Any]], spaced: bool) -> bytes:
    """The rows as JSONL lines, each with its ``_idx``."""
    return lines([{**r, "_idx": i} for i, r in enumerate(rows)], spaced)


def tables(keys: list[str], cells: Any, most: int) -> Any:
    """Lists of 1 to ``most`` rows over ``keys``, values from ``cells``."""
    return st.lists(st.dictionaries(st.sampled_from(keys), cells), min_size=1, max_size=most)


@settings(max_examples=300, deadline=None)
@given(tables(["loss", "acc", "a:b", "n", "val/loss", "_timestamp"], values, 120), st.booleans())
def test_the_fast_path_never_differs_from_row_by_row(
    rows: list[dict[str, Any]], spaced: bool
) -> None:
    assert_same(numbered(rows, spaced))  # compares whenever the fast path answers


@settings(max_examples=200, deadline=None)
@given(tables(["loss", "acc", "n", "val/loss", "lr"], numbers, 300), st.booleans())
def test_rows_of_numbers_always_take_the_fast_path(
    rows: list[dict[str, Any]], spaced: bool
) -> None:
    assert assert_same(numbered(rows, spaced))


def test_a_big_file_reads_the_same_with_and_without_polars(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "metrics.jsonl"
    write_metrics(path, [{k: v for k, v in r.items() if k[0] != "_"} for r in training(30_000)])
    monkeypatch.setattr(series, "CHUNK", 512 * 1024)  # several blocks, each past MIN_BYTES
    taken: list[bool] = []
    real = fast.parse

    def counted(block: bytes, known: list[str] | None = None) -> fast.Parsed | None:
        parsed = real(block, known)
        taken.append(parsed is not None)
        return parsed

    monkeypatch.setattr(fast, "parse", counted)
    quick = Columns()
    read_new_lines(path, quick)
    assert len(taken) > 2 and all(taken)
    monkeypatch.setattr(fast, "polars", lambda: None)  # as without the extra installed
    slow = Columns()
    read_new_lines(path, slow)
    (offset_a, rows_a, a), (offset_b, rows_b, b) = quick.snapshot(), slow.snapshot()
    assert (offset_a, rows_a) == (offset_b, rows_b) == (path.stat().st_size, 30_000)
    assert sorted(a) == sorted(b) == ["_idx", "_time", "loss", "lr", "step", "val/loss"]
    for key in a:
        np.testing.assert_array_equal(a[key], b[key], err_msg=key)
