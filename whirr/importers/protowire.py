"""Just enough of protobuf's wire format to read TensorBoard event files and W&B run
files without their libraries (``tensorboard``/``tensorflow``, ``wandb``): a message is a
sequence of (field number, wire type, value) and nothing else is needed to pick out the
few fields an import reads. Field numbers come from the projects' ``.proto`` files, which
protobuf keeps stable by design."""

from __future__ import annotations

import struct
from collections.abc import Iterator

VARINT, FIXED64, BYTES, FIXED32 = 0, 1, 2, 5


class WireError(ValueError):
    """The bytes are not a protobuf message (a torn or foreign file)."""


def varint(buf: bytes, pos: int) -> tuple[int, int]:
    """The varint at ``pos`` and the position after it."""
    result = shift = 0
    while True:
        if pos >= len(buf) or shift > 63:
            raise WireError("truncated varint")
        byte = buf[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return result, pos
        shift += 7


def fields(buf: bytes) -> Iterator[tuple[int, int, int | bytes]]:
    """(number, wire type, value) of each field: an int for varints, bytes otherwise
    (the raw 8 or 4 bytes of a fixed field)."""
    pos = 0
    while pos < len(buf):
        key, pos = varint(buf, pos)
        number, wire = key >> 3, key & 7
        value: int | bytes
        if wire == VARINT:
            value, pos = varint(buf, pos)
        elif wire == FIXED64:
            value, pos = buf[pos : pos + 8], pos + 8
        elif wire == BYTES:
            size, pos = varint(buf, pos)
            value, pos = buf[pos : pos + size], pos + size
        elif wire == FIXED32:
            value, pos = buf[pos : pos + 4], pos + 4
        else:
            raise WireError(f"unsupported wire type {wire}")
        if pos > len(buf):
            raise WireError("truncated field")
        yield number, wire, value


def signed(value: int) -> int:
    """A varint read as a two's-complement int64 (``int64`` fields)."""
    return value - (1 << 64) if value >= 1 << 63 else value


def zigzag(value: int) -> int:
    """A ``sint64`` field's value."""
    return (value >> 1) ^ -(value & 1)


def double(raw: bytes) -> float:
    """A ``double`` (fixed64) field."""
    return float(struct.unpack("<d", raw)[0])


def single(raw: bytes) -> float:
    """A ``float`` (fixed32) field."""
    return float(struct.unpack("<f", raw)[0])


def text(raw: int | bytes) -> str:
    """A ``string`` field (undecodable bytes replaced)."""
    return raw.decode("utf-8", "replace") if isinstance(raw, bytes) else str(raw)
