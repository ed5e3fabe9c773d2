"""The job output cap (issue 19): ``OutputCap`` keeps the head and the tail of a job's
output and drops its middle; ``OutputCopier`` copies a real pipe into ``output.log``
through it and finishes, bounded, once the job's processes are gone."""

from __future__ import annotations

import itertools
import os
import threading
import time
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from whirr.worker.output_cap import (
    MAX_TAIL_BYTES,
    OutputCap,
    OutputCopier,
    first_marker,
    last_marker,
    tail_bytes,
)


def expected(data: bytes, cap: int | None) -> bytes:
    """What the log holds for ``data`` written in one go, from the spec's words."""
    if cap is None:
        return data
    tail = min(MAX_TAIL_BYTES, cap // 4)
    head = cap - tail
    if len(data) <= head:
        return data
    kept = data[head:][-tail:] if tail else b""
    newline = b"" if data[:head].endswith(b"\n") else b"\n"
    dropped = len(data) - head - len(kept)
    return data[:head] + newline + first_marker(cap) + last_marker(dropped, len(kept)) + kept


def through(cap: int | None, chunks: list[bytes]) -> bytes:
    state = OutputCap(cap)
    return b"".join(state.take(chunk) for chunk in chunks) + state.end()


def test_the_marker_lines_are_the_specs_bytes() -> None:
    # The Rust worker writes these same bytes: a change here is a change there.
    assert first_marker(2**20) == (
        b"[whirr] output passed its cap of 1.0 MiB (--max-output-size): the rest is "
        b"dropped, except its last 256.0 KiB, written when the job ends.\n"
    )
    assert first_marker(2**30) == (
        b"[whirr] output passed its cap of 1.0 GiB (--max-output-size): the rest is "
        b"dropped, except its last 1.0 MiB, written when the job ends.\n"
    )
    assert last_marker(2_097_152, 262_144) == (
        b"[whirr] 2.0 MiB (2097152 bytes) of output dropped; its last 256.0 KiB follow.\n"
    )
    assert last_marker(12, 3) == (
        b"[whirr] 12 B (12 bytes) of output dropped; its last 3 B follow.\n"
    )
    assert (tail_bytes(2**20), tail_bytes(2**30), tail_bytes(10), tail_bytes(3)) == (
        2**18,
        2**20,
        2,
        0,
    )


def test_output_within_the_cap_is_copied_as_it_is() -> None:
    data = bytes(range(256)) * 3  # 768 bytes, no newline at the end
    assert through(1024, [data]) == data  # head is 768: exactly full, nothing capped
    assert through(None, [data, data]) == data + data


def test_past_the_cap_the_head_the_markers_and_the_tail() -> None:
    data = b"".join(b"line %05d\n" % i for i in range(1000))  # 11,000 bytes
    out = through(4096, [data[:5000], data[5000:]])  # head 3072, tail 1024
    head = data[:3072]
    assert not head.endswith(b"\n")  # a line cut in two: the marker gets a line of its own
    assert out == (
        head
        + b"\n"
        + b"[whirr] output passed its cap of 4.0 KiB (--max-output-size): the rest is dropped, "
        b"except its last 1.0 KiB, written when the job ends.\n"
        + b"[whirr] 6.7 KiB (6904 bytes) of output dropped; its last 1.0 KiB follow.\n"
        + data[-1024:]
    )
    assert out.endswith(b"line 00999\n")


def test_a_head_ending_a_line_takes_no_extra_newline() -> None:
    data = b"a" * 3071 + b"\n" + b"b" * 5000
    assert through(4096, [data]) == (
        data[:3072] + first_marker(4096) + last_marker(5000 - 1024, 1024) + b"b" * 1024
    )


def test_one_byte_past_the_head_is_capped_with_nothing_dropped() -> None:
    data = b"x" * 3073
    assert through(4096, [data[:3072], data[3072:]]) == (
        data[:3072] + b"\n" + first_marker(4096) + last_marker(0, 1) + b"x"
    )


def test_a_tiny_cap_keeps_no_tail() -> None:
    assert through(3, [b"abcdef"]) == b"abc\n" + first_marker(3) + last_marker(3, 0)


@settings(max_examples=200, deadline=None)
@given(
    data=st.binary(max_size=6000),
    cap=st.one_of(st.none(), st.integers(1, 5000)),
    cuts=st.lists(st.integers(0, 6000), max_size=8),
)
def test_any_chunking_gives_the_bytes_of_one_write(
    data: bytes, cap: int | None, cuts: list[int]
) -> None:
    bounds = sorted({0, len(data), *(c for c in cuts if c <= len(data))})
    chunks = [data[a:b] for a, b in itertools.pairwise(bounds)]
    assert through(cap, chunks) == expected(data, cap)


def _copier(tmp_path: Path, cap: int | None, drain_s: float = 5.0) -> tuple[OutputCopier, int]:
    log = tmp_path / "output.log"
    log.write_bytes(b"whirr: a note before the job\n")
    read_fd, write_fd = os.pipe()
    return OutputCopier(read_fd, str(log), cap, drain_s=drain_s), write_fd


def test_the_copier_appends_the_pipe_and_ends_before_it_says_so(tmp_path: Path) -> None:
    copier, write_fd = _copier(tmp_path, 2**20)
    data = b"".join(b"%07d\n" % i for i in range(400_000))  # 3.2 MB
    writer = threading.Thread(target=lambda: (os.write(write_fd, data), os.close(write_fd)))
    writer.start()
    writer.join(30)
    ended = threading.Event()
    seen: list[bytes] = []
    copier.job_gone(lambda: (seen.append((tmp_path / "output.log").read_bytes()), ended.set()))
    assert ended.wait(30)
    # Complete before the callback ran (the worker reports the end from there).
    assert seen == [b"whirr: a note before the job\n" + expected(data, 2**20)]
    assert copier.write_error is None


def test_job_gone_after_the_end_of_the_output_calls_back_at_once(tmp_path: Path) -> None:
    copier, write_fd = _copier(tmp_path, None)
    os.write(write_fd, b"all of it\n")
    os.close(write_fd)
    assert copier.wait(30)
    called: list[str] = []
    copier.job_gone(lambda: called.append(threading.current_thread().name))
    assert called == [threading.current_thread().name]
    assert (tmp_path / "output.log").read_bytes().endswith(b"the job\nall of it\n")


def test_a_leftover_holding_the_pipe_is_cut_off_after_the_drain(tmp_path: Path) -> None:
    copier, write_fd = _copier(tmp_path, 4096, drain_s=0.3)
    os.write(write_fd, b"y" * 10_000)
    # A leftover still holds write_fd: no EOF comes.
    assert not copier.wait(0.2)
    ended = threading.Event()
    began = time.monotonic()
    copier.job_gone(ended.set)
    assert ended.wait(10)
    assert 0.25 <= time.monotonic() - began < 5
    log = (tmp_path / "output.log").read_bytes()
    assert log.endswith(last_marker(10_000 - 3072 - 1024, 1024) + b"y" * 1024)
    with pytest.raises(BrokenPipeError):  # the read end is closed: EPIPE for the leftover
        os.write(write_fd, b"more")
    os.close(write_fd)
