"""A job's output, copied from its pipe into ``output.log`` within the worker's cap
(``whirr worker --max-output-size``, ``WHIRR_MAX_OUTPUT_SIZE``; default 1 GiB).

The job's stdout and stderr are the write end of one pipe (so the two interleave as the
job wrote them); a thread per job reads the other end and appends to ``output.log``, which
stays append-only (``whirr logs -f`` and file shipping read it as before). Past the cap
the output's head and tail are kept and its middle dropped, because a failed job's
traceback is at its end: the first ``cap - tail`` bytes go in as they come, then a marker
line; the last ``tail`` bytes (``min(1 MiB, cap / 4)``) are kept in memory and written,
after a second marker saying how much was dropped, when the job's output ends. Job bytes in
the file never exceed the cap (the markers are not counted). The Rust worker writes the
same bytes (``worker-rust``; the marker texts must stay identical).

The output ends at EOF on the pipe. Once every process of the job is gone (``job_gone``)
the copier drains what is left for at most ``DRAIN_S`` seconds (a process that escaped the
job may hold the pipe open), then closes its end: such a leftover gets EPIPE.
"""

from __future__ import annotations

import os
import select
import threading
import time
from collections import deque
from collections.abc import Callable

from whirr.filemodes import open_private
from whirr.worker.run_size import human_bytes

#: The default cap.
DEFAULT_MAX_OUTPUT_BYTES = 2**30
#: The most of the output's end kept past the cap.
MAX_TAIL_BYTES = 2**20
#: How long the output is drained once the job's processes are all gone.
DRAIN_S = 5.0
#: One read from the pipe (a pipe holds 64 KiB by default).
READ_BYTES = 2**16


def tail_bytes(cap: int) -> int:
    """How much of the output's end a cap of ``cap`` bytes keeps."""
    return min(MAX_TAIL_BYTES, cap // 4)


def first_marker(cap: int) -> bytes:
    """The line written where the output passed the head it keeps."""
    return (
        f"[whirr] output passed its cap of {human_bytes(cap)} (--max-output-size): the "
        f"rest is dropped, except its last {human_bytes(tail_bytes(cap))}, written when "
        "the job ends.\n"
    ).encode()


def last_marker(dropped: int, kept: int) -> bytes:
    """The line written before the kept tail, when the output ends."""
    return (
        f"[whirr] {human_bytes(dropped)} ({dropped} bytes) of output dropped; its last "
        f"{human_bytes(kept)} follow.\n"
    ).encode()


class OutputCap:
    """What of a job's output goes into its log, chunk by chunk (no I/O here)."""

    def __init__(self, cap: int | None) -> None:
        self.cap = cap
        self.tail_size = 0 if cap is None else tail_bytes(cap)
        self.head_size = None if cap is None else cap - self.tail_size
        #: Job bytes seen so far.
        self.total = 0
        #: True once the output passed the head (the first marker is written).
        self.capped = False
        self._last_byte = b""
        # The tail: chunks whose total exceeds tail_size by less than the first one.
        self._tail: deque[bytes] = deque()
        self._tail_len = 0

    def take(self, chunk: bytes) -> bytes:
        """The bytes to append to the log for ``chunk`` of the job's output."""
        self.total += len(chunk)
        if self.head_size is None:
            return chunk
        if self.capped:
            self._keep(chunk)
            return b""
        room = self.head_size - (self.total - len(chunk))
        if len(chunk) <= room:
            if chunk:
                self._last_byte = chunk[-1:]
            return chunk
        assert self.cap is not None
        head = chunk[:room]
        last = head[-1:] or self._last_byte
        self.capped = True
        self._keep(chunk[room:])
        newline = b"" if last in (b"\n", b"") else b"\n"
        return head + newline + first_marker(self.cap)

    def end(self) -> bytes:
        """The bytes to append when the output has ended: nothing unless it was capped,
        else the second marker and the kept tail."""
        if not self.capped:
            return b""
        assert self.head_size is not None
        kept = b"".join(self._tail)
        kept = kept[max(0, len(kept) - self.tail_size) :] if self.tail_size else b""
        dropped = self.total - self.head_size - len(kept)
        return last_marker(dropped, len(kept)) + kept

    def _keep(self, data: bytes) -> None:
        if not data or not self.tail_size:
            return
        self._tail.append(data)
        self._tail_len += len(data)
        while self._tail_len - len(self._tail[0]) >= self.tail_size:
            self._tail_len -= len(self._tail.popleft())


class OutputCopier:
    """A thread copying one job's output from ``read_fd`` (which it owns and closes)
    into ``log_path``, through an ``OutputCap``."""

    def __init__(
        self, read_fd: int, log_path: str, cap: int | None, *, drain_s: float = DRAIN_S
    ) -> None:
        self._read_fd = read_fd
        self._log_fd = open_private(log_path, os.O_WRONLY | os.O_APPEND)
        self._cap = OutputCap(cap)
        self._drain_s = drain_s
        # Written once by job_gone: wakes the thread to start the bounded drain.
        self._wake_r, self._wake_w = os.pipe()
        self._lock = threading.Lock()
        self._then: Callable[[], None] | None = None
        #: Set once the output is complete in the log (and every fd closed).
        self.done = threading.Event()
        #: Why a write to the log failed last (the bytes of that write are lost).
        self.write_error: OSError | None = None
        self._thread = threading.Thread(target=self._run, name="job-output", daemon=True)
        self._thread.start()

    def job_gone(self, then: Callable[[], None]) -> None:
        """Every process of the job is gone: finish (bounded by the drain time), then
        call ``then`` (at once if the output already ended)."""
        with self._lock:
            finished = self.done.is_set()
            if not finished:
                self._then = then
                os.write(self._wake_w, b"x")
        if finished:
            then()

    def wait(self, timeout: float | None = None) -> bool:
        """Block until the output is complete in the log; False on timeout."""
        return self.done.wait(timeout)

    def _run(self) -> None:
        try:
            self._copy()
            self._write(self._cap.end())
        finally:
            # Under the lock: job_gone writes to the wake pipe only while it is open.
            with self._lock:
                for fd in (self._read_fd, self._log_fd, self._wake_r, self._wake_w):
                    os.close(fd)
                self.done.set()
                then, self._then = self._then, None
            if then is not None:
                then()

    def _copy(self) -> None:
        poller = select.poll()  # not select(): a busy worker's fds may pass 1024
        poller.register(self._read_fd, select.POLLIN)
        poller.register(self._wake_r, select.POLLIN)
        deadline: float | None = None
        while True:
            timeout_ms = None
            if deadline is not None:
                left = deadline - time.monotonic()
                if left <= 0:
                    return  # a leftover holds the pipe: what it writes now is not ours
                timeout_ms = max(1, int(left * 1000))
            ready = dict(poller.poll(timeout_ms))
            if self._wake_r in ready:
                poller.unregister(self._wake_r)
                deadline = time.monotonic() + self._drain_s
            if self._read_fd in ready:
                chunk = os.read(self._read_fd, READ_BYTES)
                if not chunk:
                    return  # every writer closed the pipe: the output is complete
                self._write(self._cap.take(chunk))

    def _write(self, data: bytes) -> None:
        view = memoryview(data)
        while view:
            try:
                written = os.write(self._log_fd, view)
            except OSError as exc:  # a full disk: the job would have lost it too
                self.write_error = exc
                return
            view = view[written:]
