"""Big blocks of JSONL metric rows parsed straight into numpy columns by polars.

msgspec builds a Python dict per row and a Python object per value; for a million-row
``metrics.jsonl`` that was most of the time a first chart waited for. polars parses the
same bytes into columns in native code, on every core. It must be told the keys up front
(its own inference samples the first rows and would miss a key that first appears
late), so ``parse``:

1. reads the keys of the block's first lines with msgspec, going on only when their
   values are numbers or null (``_timestamp``: text);
2. has polars parse the whole block with those keys as float columns (``_timestamp`` as
   text); that fails on any other value (a string, a bool, an object, a garbled line);
3. proves that every other key in the block only ever holds null, by counting colons.
   Without backslashes (checked) a colon is either inside a string or separates a key
   from its value. So ``colons == values + nulls + colons in timestamps``, where
   ``values`` counts the known keys' non-null values, ``nulls`` the colons followed by
   ``n`` (or a space and ``n``: a ``null``) outside timestamps, and ``colons in
   timestamps`` all of theirs, holds only when no other key has a value: each term on
   the right counts a distinct colon, and an unknown key's value would add one to the
   left alone. (A null of an unknown key is the same as its absence. ``nulls`` may count
   a colon inside some other string, in a key say; but that colon is counted on the
   left as well, so it cannot make up for an unexplained value.)
4. when the count is off (a key logged only now and then, like a validation loss, that
   the first lines lack), does the same sum line by line, reads the keys of the lines
   where it is off, and goes back to 2 with them.

Any doubt returns None and the caller parses the block row by row, as before: the
result is the same either way, only the time differs.
"""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Callable
from datetime import datetime
from itertools import repeat
from typing import Any, NamedTuple, TypeAlias

import msgspec
import numpy as np

from whirr.analytics.downsample import Array

#: Smaller blocks (a live chart's few new lines) are cheaper through msgspec.
MIN_BYTES = 256 * 1024
#: Lines whose keys and types are read before polars is asked (and, in each later round,
#: lines whose colons the keys so far do not explain).
SAMPLE_LINES = 64
#: Bytes at the start of a block those first lines are taken from (whole lines only).
HEAD_BYTES = 256 * 1024
#: Rounds of finding more keys before the block goes row by row.
ROUNDS = 8
TIMESTAMP = "_timestamp"
#: A colon then ``n``, or a colon, a space and ``n``: outside strings, a ``null`` value.
NULL_MARKS = (b":n", b": n")
_EPOCH = np.datetime64("1970-01-01T00:00:00", "us")
#: A column's piece: an array, or a function making it when first needed.
Chunk: TypeAlias = Array | Callable[[], Array]
_decode_row = msgspec.json.Decoder(dict[str, Any]).decode


@functools.cache
def polars() -> Any:
    """The polars module, or None without it (every block then goes row by row). Imported
    on first use (a quarter of a second): see ``warm``."""
    try:
        import polars
    except ImportError:
        return None
    return polars


def warm() -> None:
    """Import polars and have it parse a line, so the first chart waits for neither (its
    worker threads start on first use): the dashboard calls this as it starts."""
    pl = polars()
    if pl is not None:
        pl.read_ndjson(b'{"a": 1}\n', schema={"a": pl.Float64})


class Parsed(NamedTuple):
    """A block as columns: float arrays, only those with a value (``_time``, in epoch
    seconds, made when first needed), and every key the block was read with (the keys
    to try first on the next block of the same file)."""

    rows: int
    columns: dict[str, Chunk]
    keys: list[str]


def parse(block: bytes, known: list[str] | None = None) -> Parsed | None:
    """``block`` (whole JSONL lines) as columns, or None when it must go row by row;
    ``known``: keys seen in earlier blocks of the file."""
    pl = polars()
    if pl is None or b"\\" in block:
        return None
    keys = _keys_of(block[:HEAD_BYTES].split(b"\n")[:-1][:SAMPLE_LINES])
    if keys is not None and known:
        keys = list(dict.fromkeys([*known, *keys]))
    colons = int(np.count_nonzero(np.frombuffer(block, dtype=np.uint8) == ord(":")))
    for _ in range(ROUNDS):
        if keys is None:
            return None
        schema = {key: pl.String if key == TIMESTAMP else pl.Float64 for key in keys}
        try:
            frame = pl.read_ndjson(block, schema=schema)
        except pl.exceptions.PolarsError:
            return None  # a value of another type (or a garbled line) in the block
        if _accounted(block, colons, frame):
            return Parsed(frame.height, _columns(frame), keys)
        keys = _more_keys(pl, block, frame)
    return None


def _accounted(block: bytes, colons: int, frame: Any) -> bool:
    """Whether the frame's keys explain every colon of the block (step 3). The nulls are
    counted only when the colons do not come out even without them (a rare block: that
    scan costs three times the colon count)."""
    if colons == _explained(frame, nulls=False):
        return True  # the nulls, and any unknown key's value, can only be none
    nulls = sum(map(block.count, NULL_MARKS))
    return nulls > 0 and colons == _explained(frame, nulls=True) + nulls


def _explained(frame: Any, nulls: bool) -> int:
    """Colons the frame's keys explain: their non-null values and the colons inside
    timestamps, less (when the block has ``nulls``) those a null count took already."""
    values = sum(frame.height - frame.get_column(key).null_count() for key in frame.columns)
    if TIMESTAMP in frame.columns:
        stamps = frame.get_column(TIMESTAMP).str
        marks = (":", *(m.decode() for m in NULL_MARKS)) if nulls else (":",)
        counts = [stamps.count_matches(mark, literal=True).sum() or 0 for mark in marks]
        values += counts[0] - sum(counts[1:])
    return int(values)


def _nulls(text: Any) -> Any:
    """Offsets of the colons followed by ``n`` or by a space and ``n``: outside strings,
    exactly the ``null`` values of valid JSON."""
    at = np.flatnonzero(text[:-2] == ord(":"))
    after = text[at + 1]
    return at[(after == ord("n")) | ((after == ord(" ")) & (text[at + 2] == ord("n")))]


def _more_keys(pl: Any, block: bytes, frame: Any) -> list[str] | None:
    """The frame's keys and those of the first lines whose colons they do not explain;
    None when lines and rows do not pair up (a blank line) or no such line is found."""
    text = np.frombuffer(block, dtype=np.uint8)
    ends = np.flatnonzero(text == ord("\n"))
    if len(ends) != frame.height:
        return None

    def per_line(offsets: Any) -> Any:
        return np.bincount(np.searchsorted(ends, offsets), minlength=len(ends))[: len(ends)]

    unexplained = per_line(np.flatnonzero(text == ord(":"))) - per_line(_nulls(text))
    parts = [pl.sum_horizontal([pl.col(key).is_not_null() for key in frame.columns])]
    if TIMESTAMP in frame.columns:
        parts.append(pl.col(TIMESTAMP).str.count_matches(":", literal=True).fill_null(0))
    unexplained -= frame.select(pl.sum_horizontal(parts)).to_series().to_numpy()
    odd = np.flatnonzero(unexplained)[:SAMPLE_LINES]
    starts = np.concatenate(([0], ends[:-1] + 1))
    more = _keys_of([block[starts[i] : ends[i]] for i in odd])
    if not len(odd) or more is None or set(more) <= set(frame.columns):
        return None  # nothing new to try (say, a colon inside a key's name)
    return list(dict.fromkeys([*frame.columns, *more]))


def _columns(frame: Any) -> dict[str, Chunk]:
    """The frame's columns that hold a value; ``_time`` made when first needed."""
    columns: dict[str, Chunk] = {}
    for key in frame.columns:
        series = frame.get_column(key)
        if series.null_count() == frame.height:
            continue  # never a value here: the column is NaN, as a missing key is
        if key == TIMESTAMP:
            columns["_time"] = _seconds_later(series)
        else:
            columns[key] = series.to_numpy()  # nulls become NaN
    return columns


def _keys_of(lines: list[bytes]) -> list[str] | None:
    """The keys of ``lines``, when every value there is a number or null (a string only
    under ``_timestamp``); None otherwise."""
    keys: dict[str, None] = {}
    for line in lines:
        if not line.strip():
            continue
        try:
            row = _decode_row(line)
        except msgspec.DecodeError:
            return None
        for key, value in row.items():
            wanted = (str, type(None)) if key == TIMESTAMP else (int, float, type(None))
            if type(value) not in wanted:  # bool is an int subclass: excluded by type()
                return None
            keys[key] = None
    return list(keys) or None


def _seconds_later(series: Any) -> Callable[[], Array]:
    """A function giving the epoch seconds of a column of timestamps, made when first
    called (and kept): most charts are drawn against steps and never need them."""

    @functools.cache
    def seconds() -> Array:
        if not series.null_count() and series.str.ends_with("Z").all():
            # whirr writes UTC with a ``Z``; numpy parses the naive part in C.
            with contextlib.suppress(ValueError):
                stamps = series.str.strip_suffix("Z").to_numpy().astype("datetime64[us]")
                result: Array = (stamps - _EPOCH) / np.timedelta64(1, "s")
                return result
        return epoch_seconds(series.to_list())

    return seconds


def epoch_seconds(values: list[Any]) -> Array:
    """Epoch seconds of ISO-8601 timestamps (NaN where missing or unreadable)."""
    try:
        # whirr writes UTC with a ``Z``; numpy parses the naive part in C.
        if all(map(str.endswith, values, repeat("Z"))):
            stamps = np.array([v[:-1] for v in values], dtype="datetime64[us]")
            result: Array = (stamps - _EPOCH) / np.timedelta64(1, "s")
            return result
    except (TypeError, ValueError):
        pass  # a missing or odd timestamp: the careful path below
    out = np.full(len(values), np.nan)
    for i, value in enumerate(values):
        if isinstance(value, str):
            try:
                out[i] = datetime.fromisoformat(value).timestamp()
            except ValueError:
                continue
    return out
