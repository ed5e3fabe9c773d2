"""Metric series of runs as numpy columns, read incrementally from JSONL and drawn small.

A run's ``metrics.jsonl`` (or ``system.jsonl``) only grows, so a ``Columns`` remembers how
many bytes it has parsed and reads just the new whole lines on the next look: a live chart
of a million-point run costs one full parse, then a few lines per refresh. Rows come
from files (a local project) or from the HTTP API (``extend`` with decoded rows).

Big blocks of lines are parsed straight into columns by polars (``fast.py``) when they
hold only numbers and timestamps, which is what ``run.log`` writes almost always; anything
else goes through msgspec row by row, with the same result.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from itertools import chain, repeat
from pathlib import Path
from typing import Any

import msgspec
import numpy as np

from whirr.analytics.downsample import Array, Method, downsample
from whirr.dashboard import fast
from whirr.dashboard.fast import Chunk, epoch_seconds
from whirr.runfiles import RunFile, UnsafePath

_decode_rows = msgspec.json.Decoder(list[dict[str, Any]]).decode
#: Bytes parsed per step: bounds the memory one parse holds as Python objects.
CHUNK = 8 * 1024 * 1024
#: Keys that describe a row rather than measure something.
META_KEYS = frozenset({"_idx", "_timestamp", "step"})


class Columns:
    """The numeric columns of one JSONL series, growing as rows arrive."""

    def __init__(self) -> None:
        self.rows = 0
        self.offset = 0  # bytes of the file parsed so far (whole lines only)
        self._stamp: tuple[int, int] = (-1, -1)
        self._chunks: dict[str, list[Chunk]] = {}
        self._cache: dict[str, Array] = {}
        # Drawn series by (key, x, points, method, since): a page reopened, or open in
        # several tabs, costs no downsampling of a million points until rows arrive.
        self._drawn: dict[tuple[str, str, int, str, int], dict[str, Any]] = {}
        #: Whether the on-disk cache (``column_cache``) was looked at for these columns.
        self.cache_checked = False
        #: The file's keys found by the fast parser so far, tried first on the next block.
        self.json_keys: list[str] = []
        self.lock = threading.Lock()

    @property
    def keys(self) -> list[str]:
        """Metric names with at least one numeric value, sorted (meta keys excluded)."""
        return sorted(self.logged_keys)

    @property
    def logged_keys(self) -> list[str]:
        """The metric names in the order the run first logged them (the order a person
        reads a run's charts in: ``train/loss`` before ``train/acc`` when it came first)."""
        return [k for k in self._chunks if k not in META_KEYS and k != "_time"]

    def extend(self, rows: list[dict[str, Any]]) -> None:
        """Append decoded rows; a key missing from a row is NaN there."""
        if not rows:
            return
        # First-seen order (not a set's): columns keep the order the run logged keys in.
        keys = dict.fromkeys(chain.from_iterable(rows))
        found: dict[str, Chunk] = {}
        for key in keys:
            values = list(map(dict.get, rows, repeat(key)))
            column = _times(values) if key == "_timestamp" else _numbers(values)
            if column is not None:
                found["_time" if key == "_timestamp" else key] = column
        self.append(len(rows), found)

    def append(self, count: int, found: dict[str, Chunk]) -> None:
        """Append ``count`` rows given as columns (each ``count`` long, or a function that
        makes it when first needed); a column absent from ``found`` is NaN in these rows."""
        if not count:
            return
        for name, column in found.items():
            self._add(name, column)
        # Columns not seen in this batch still need their NaNs, so all stay aligned.
        for key, chunks in self._chunks.items():
            if key not in found:
                chunks.append(np.full(count, np.nan))
        self.rows += count
        self._cache.clear()
        self._drawn.clear()

    def snapshot(self) -> tuple[int, int, dict[str, Array]]:
        """(bytes parsed, rows, every column): what ``restore`` takes back. Takes ``lock``
        only to copy references: the columns are joined (and made, where they wait to be)
        outside it, so charts of these columns need not wait meanwhile."""
        with self.lock:
            offset, rows = self.offset, self.rows
            chunks = {key: list(parts) for key, parts in self._chunks.items()}
        return offset, rows, {key: _joined(parts, rows) for key, parts in chunks.items()}

    def restore(self, offset: int, rows: int, columns: dict[str, Array]) -> None:
        """Become the columns of the first ``offset`` bytes of the file (``rows`` rows);
        the next read parses only what follows."""
        self.offset, self.rows = offset, rows
        self._stamp = (-1, -1)
        self._chunks = {key: [column] for key, column in columns.items()}
        self._cache.clear()
        self._drawn.clear()

    def _add(self, key: str, column: Chunk) -> None:
        chunks = self._chunks.get(key)
        if chunks is None:
            chunks = self._chunks[key] = [np.full(self.rows, np.nan)] if self.rows else []
        chunks.append(column)

    def column(self, key: str) -> Array:
        """One column as a single array (NaN where the key was absent)."""
        cached = self._cache.get(key)
        if cached is not None:
            return cached
        chunks = self._chunks.get(key)
        joined = _joined(chunks or [], self.rows)
        self._chunks[key] = [joined] if chunks else []
        self._cache[key] = joined
        return joined

    def x_axis(self, kind: str) -> Array:
        """The x values: ``step`` (falling back to ``_idx``), ``time`` (seconds since the
        first row), ``wall`` (the rows' epoch seconds) or ``index``."""
        if kind == "wall" and "_time" in self._chunks:
            return self.column("_time")
        if kind == "time":
            t = self.column("_time")
            first = t[np.isfinite(t)]
            return t - first[0] if len(first) else np.arange(self.rows, dtype=np.float64)
        if kind == "step" and "step" in self._chunks:
            step = self.column("step")
            if not np.isnan(step).any():
                return step
            # Rows logged without a step fall back to their index.
            return np.where(np.isnan(step), self.column("_idx"), step)
        if "_idx" in self._chunks:
            return self.column("_idx")
        return np.arange(self.rows, dtype=np.float64)

    def series(
        self, key: str, x: str, points: int, method: Method = "minmax", since: int = 0
    ) -> dict[str, Any]:
        """``{key, x, y, total, rows}``: the key's points (rows ``since`` on) drawn down
        to about ``points``; rows without a value for the key are left out. The answer is
        shared with later callers: do not change it."""
        memo = (key, x, points, method, since)
        drawn = self._drawn.get(memo)
        if drawn is None:
            if len(self._drawn) >= 256:
                self._drawn.clear()  # many widths or keys: start over rather than grow
            drawn = self._drawn[memo] = self._draw(key, x, points, method, since)
        return drawn

    def _draw(self, key: str, x: str, points: int, method: Method, since: int) -> dict[str, Any]:
        xs = self.x_axis(x)[since:]
        ys = self.column(key)[since:]
        present = ~np.isnan(ys) if key in self._chunks else np.zeros(len(ys), dtype=bool)
        if not present.all():  # copies only when some rows lack the key
            xs, ys = xs[present], ys[present]
        total = len(xs)
        dx, dy = downsample(xs, ys, points, method)
        return {"key": key, "x": dx.tolist(), "y": dy.tolist(), "total": total, "rows": self.rows}

    def last(self) -> dict[str, float]:
        """The last logged value of every metric."""
        out: dict[str, float] = {}
        for key in self.keys:
            col = self.column(key)
            finite = np.flatnonzero(~np.isnan(col))
            if len(finite):
                out[key] = float(col[finite[-1]])
        return out


def _joined(chunks: list[Chunk], rows: int) -> Array:
    """One array of a column's chunks (made first, where they wait to be); all NaN when
    the column has none."""
    if not chunks:
        return np.full(rows, np.nan)
    made = [chunk() if callable(chunk) else chunk for chunk in chunks]
    return made[0] if len(made) == 1 else np.concatenate(made)


_NUMERIC_TYPES = frozenset({int, float, type(None)})


def _numbers(values: list[Any]) -> Array | None:
    """A float column of ``values``, or None when none of them is a number."""
    kinds = set(map(type, values))
    if kinds <= _NUMERIC_TYPES:
        # The common case, converted in C: None becomes NaN.
        return None if kinds == {type(None)} else np.array(values, dtype=np.float64)
    numeric = False
    out = np.full(len(values), np.nan)
    for i, value in enumerate(values):
        # bool is an int subclass, but True is not a measurement worth a chart.
        if type(value) is float or type(value) is int:
            out[i] = value
            numeric = True
    return out if numeric else None


def _times(values: list[Any]) -> Array | None:
    """Epoch seconds of timestamps, or None when none of them is text (like a metric
    without a number: no column, rather than one of NaN)."""
    return epoch_seconds(values) if any(isinstance(v, str) for v in values) else None


def read_new_lines(path: Path | RunFile, columns: Columns) -> bool:
    """Parse the whole lines appended to ``path`` since ``columns`` last looked; True when
    rows were added. A torn last line waits for its newline; a garbled line is skipped, and
    so is a file a job replaced with a symlink or a FIFO (see ``whirr.runfiles``)."""
    try:
        st = path.stat()
    except (FileNotFoundError, UnsafePath):
        return False
    stamp = (st.st_size, st.st_mtime_ns)
    if stamp == columns._stamp:
        return False
    added = False
    try:
        fh = path.open("rb")
    except (FileNotFoundError, UnsafePath):
        return False
    with fh:
        fh.seek(columns.offset)
        while True:
            data = fh.read(CHUNK)
            if not data:
                break
            end = data.rfind(b"\n")
            if end < 0:
                if len(data) < CHUNK:
                    break  # a torn last line: wait for the rest
                continue  # one huge line: keep reading (rare; never split a line)
            whole = data[: end + 1]
            fh.seek(columns.offset + end + 1)
            columns.offset += end + 1
            parsed = fast.parse(whole, columns.json_keys) if len(whole) >= fast.MIN_BYTES else None
            if parsed is None:
                columns.extend(_parse(whole))
            else:
                columns.append(parsed.rows, parsed.columns)
                columns.json_keys = parsed.keys
            added = True
    columns._stamp = stamp
    return added


def _parse(block: bytes) -> list[dict[str, Any]]:
    """Rows of a block of whole JSONL lines; one bad line costs only itself."""
    body = block.rstrip(b"\n").replace(b"\n", b",")
    try:
        return _decode_rows(b"[" + body + b"]")
    except msgspec.DecodeError:
        rows = []
        for line in block.split(b"\n"):
            if line.strip():
                try:
                    rows.append(msgspec.json.decode(line, type=dict[str, Any]))
                except msgspec.DecodeError:
                    continue
        return rows


class SeriesCache:
    """The ``Columns`` of recently viewed runs, least recently used dropped first."""

    def __init__(self, capacity: int = 64) -> None:
        self.capacity = capacity
        self._items: OrderedDict[tuple[str, str], Columns] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, run_id: str, kind: str) -> Columns:
        """The columns for (run, kind), created empty on first use."""
        with self._lock:
            key = (run_id, kind)
            columns = self._items.get(key)
            if columns is None:
                columns = self._items[key] = Columns()
                while len(self._items) > self.capacity:
                    self._items.popitem(last=False)
            else:
                self._items.move_to_end(key)
            return columns
