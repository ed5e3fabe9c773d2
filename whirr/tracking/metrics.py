"""The metrics writer: one msgspec-encoded JSON line per ``run.log()``, appended to
``metrics.jsonl`` with a single ``write`` on an ``O_APPEND`` descriptor.

Why one ``write``: once it returns, the line is in the kernel's page cache, so it survives
the process being killed the next instant (only an OS crash or power loss can lose it,
as with any file that is not fsynced). A line is never split across two writes, so a
reader sees whole lines, except for the last one of a file whose write was cut short
(disk full), which the reader tolerates and the next writer trims.
"""

from __future__ import annotations

import operator
import os
import threading
from datetime import datetime
from typing import Any

import msgspec

from whirr.clock import UTC
from whirr.filemodes import open_private

#: Keys the writer puts first on every line; a user key may not shadow them.
RESERVED = ("_idx", "_timestamp")
_TAIL = 64 * 1024


def to_json_value(value: Any) -> Any:
    """Turn a value msgspec cannot encode into one it can (numpy scalars, 0-d tensors,
    anything with ``item()`` or ``__float__``); raise ``TypeError`` otherwise."""
    item = getattr(value, "item", None)
    if item is not None:
        try:
            out = item()
        except (ValueError, RuntimeError) as exc:  # an array or tensor with many elements
            raise TypeError(f"{type(value).__name__} is not a scalar ({exc})") from None
        if type(out) in (float, int, bool, str) or out is None:
            return out
        value = out
    if isinstance(value, float):  # float subclasses (numpy.float64)
        return float(value)
    if isinstance(value, int):  # int subclasses (enums aside, e.g. numpy ints via item())
        return int(value)
    if hasattr(value, "__float__"):
        return float(value)
    raise TypeError(f"cannot log a value of type {type(value).__name__}")


class MetricsWriter:
    """Appends metric rows to one file. Thread-safe; ``_idx`` continues an existing file.

    ``write`` is a closure over its state rather than a method: on the hot path every
    attribute lookup counts, and cell variables are the cheapest state Python has."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = os.fspath(path)
        fd = open_private(self.path, os.O_WRONLY | os.O_APPEND)  # 0600 when new
        try:
            first = _next_index(fd, self.path)
        except BaseException:
            os.close(fd)
            raise
        self._fd = fd
        self._lock = threading.Lock()
        self.write, self.seal, self._next = self._build(fd, first, self._lock)

    @staticmethod
    def _build(fd: int, first: int, lock: threading.Lock) -> tuple[Any, Any, Any]:
        buf = bytearray()
        encode_into = msgspec.json.Encoder(enc_hook=to_json_value).encode_into
        # datetime.now(UTC) encoded by msgspec's C code is cheaper than any Python-side
        # formatting of time.time_ns() into ISO text (measured: 0.1-0.3 us less per call).
        now, utc, write_fd = datetime.now, UTC, os.write
        idx = first
        closed = False

        def write(data: dict[str, Any], step: int | None = None) -> None:
            """Append one row: ``_idx``, ``_timestamp``, ``step`` (when given), then
            ``data``. Durable against the process dying once it returns."""
            nonlocal idx
            if type(step) is not int and step is not None:  # an int step: one check
                step = _as_step(step)
            # The lock spans idx, the shared buffer and the write: os.write releases the
            # GIL, and without it two threads could write their rows out of _idx order.
            # ``with``, not acquire() + try/finally (0.1 us cheaper): a signal handler that
            # raises (Ctrl-C) can run between acquire() returning and the ``try``, leaking
            # the lock so that finish() at exit hangs; ``with`` has no such gap.
            with lock:
                if closed:
                    raise RuntimeError("this run has finished; log() cannot write to it")
                try:
                    if step is None:
                        row: dict[str, Any] = {"_idx": idx, "_timestamp": now(utc), **data}
                    else:
                        row = {"_idx": idx, "_timestamp": now(utc), "step": step, **data}
                    encode_into(row, buf)
                except (TypeError, ValueError, AttributeError):
                    raise _explain(data) from None
                # A user key equal to a reserved one replaced it in ``row``: one length
                # comparison finds that without looking the keys up on every call.
                if len(row) != len(data) + (2 if step is None else 3):
                    _reject_shadowed(data, step)
                buf.append(10)  # b"\n"
                # idx moves before the write: a signal handler that raises (Ctrl-C) runs
                # just after os.write returns, and the row it wrote must keep its _idx.
                idx += 1
                try:
                    written = write_fd(fd, buf)
                except OSError:  # nothing was written (disk full, bad fd): reuse the _idx
                    idx -= 1
                    raise
                if written != len(buf):
                    try:
                        _write_rest(fd, buf, written)
                    except OSError:  # part of the row is on disk: cut it, reuse the _idx
                        idx -= 1
                        raise

        def seal() -> None:
            """Refuse further rows without taking the lock (safe in a signal handler that
            interrupted a write on this thread)."""
            nonlocal closed
            closed = True

        def next_index() -> int:
            return idx

        return write, seal, next_index

    @property
    def next_index(self) -> int:
        """The ``_idx`` the next row will get."""
        return int(self._next())

    def close(self) -> None:
        """Stop accepting rows and release the file (idempotent)."""
        self.seal()
        with self._lock:  # waits for a write in progress on another thread
            if self._fd >= 0:
                os.close(self._fd)
                self._fd = -1


def _as_step(step: Any) -> int:
    if isinstance(step, bool):
        raise TypeError("step must be an int, not bool")
    try:
        return operator.index(step)  # numpy integers and 0-d integer tensors
    except TypeError:
        raise TypeError(f"step must be an int, not {type(step).__name__}") from None


def _reject_shadowed(data: dict[str, Any], step: int | None) -> None:
    for key in RESERVED:
        if key in data:
            raise ValueError(f"metric key {key!r} is reserved by whirr")
    if step is not None and "step" in data:
        raise ValueError("step given twice: as step= and as a 'step' key")


def _explain(data: Any) -> TypeError:
    """Find which key could not be encoded, for a message that names it."""
    if not isinstance(data, dict):
        return TypeError(f"log() takes a dict of metrics, not {type(data).__name__}")
    for key, value in data.items():
        if not isinstance(key, str):
            return TypeError(f"metric keys must be strings, got {key!r}")
        try:
            msgspec.json.encode(value, enc_hook=to_json_value)
        except TypeError as exc:
            return TypeError(f"metric {key!r}: {exc}")
    return TypeError("metrics could not be encoded")


def _write_rest(fd: int, buf: bytearray, written: int) -> None:
    """Finish a short write (rare: a disk nearly full). If the rest cannot be written
    (ENOSPC), the part that was is cut off the file before the OSError goes on: the next
    row must start a line of its own, or it would be glued onto the torn one and both
    lost (with an acknowledged row among them)."""
    view = memoryview(buf)
    try:
        while written < len(buf):
            written += os.write(fd, view[written:])
    except OSError:
        # O_APPEND and the lock: this row's bytes are the last ``written`` of the file.
        # Shrinking a file needs no free space, so this succeeds on a full disk.
        os.ftruncate(fd, os.fstat(fd).st_size - written)
        raise


def _next_index(fd: int, path: str) -> int:
    """The ``_idx`` after the last complete row of an existing file. A torn last line
    (no newline: a crash mid-write) is trimmed so new rows do not glue onto it. Reads
    back from the end in growing blocks, so a row of any length is read whole."""
    size = os.fstat(fd).st_size
    if size == 0:
        return 0
    with open(path, "rb") as fh:
        start, block = size, _TAIL
        while True:
            start = max(0, size - block)
            fh.seek(start)
            tail = fh.read(size - start)
            whole = tail.split(b"\n")
            # Two newlines in the window (or the file's start) frame one whole row.
            if start == 0 or len(whole) > 2:
                break
            block *= 2
    if not tail.endswith(b"\n"):
        cut = tail.rfind(b"\n")
        os.truncate(path, start + cut + 1 if cut >= 0 else start)
        tail = tail[: cut + 1] if cut >= 0 else b""
    lines = tail.splitlines()
    if start > 0:
        lines = lines[1:]  # cut by the window
    for line in reversed(lines):
        if line.strip():
            try:
                return int(msgspec.json.decode(line)["_idx"]) + 1
            except (msgspec.DecodeError, KeyError, TypeError, ValueError):
                continue  # not ours (hand-edited); keep looking
    return 0
