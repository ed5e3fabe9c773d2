"""Reading TensorBoard logs without TensorBoard: scalars from ``events.out.tfevents.*``.

An event file is a TFRecord stream (``uint64`` length, ``uint32`` CRC, the bytes, a
``uint32`` CRC) of ``tensorflow.Event`` protobufs, decoded here with
``whirr.importers.protowire``. As in TensorBoard, a *run* is a directory that holds event
files (``add_scalars`` and ``add_hparams`` write sub-directories, which are runs of their
own). A run's scalars are the ``simple_value`` summaries (tensorboardX, PyTorch's
``SummaryWriter``, TF1) and scalar tensors of the ``scalars`` plugin (TF2's
``tf.summary.scalar``); images, histograms, text, graphs and hparams are not imported.

A run is known by the first record of each of its event files (which holds the file's
creation time to the microsecond), so a log directory moved or imported from its parent
is still the same run, and two runs never share a key.
"""

from __future__ import annotations

import hashlib
import struct
from collections.abc import Iterator
from pathlib import Path

from whirr.importers.model import ImportedRun, Point, SourceError
from whirr.importers.protowire import (
    BYTES,
    FIXED32,
    FIXED64,
    VARINT,
    WireError,
    double,
    fields,
    signed,
    single,
    text,
    varint,
)
from whirr.importers.values import run_id_for

SOURCE = "tensorboard"
_EVENT_FILES = "events.out.tfevents.*"
#: TensorProto dtypes a scalar can have: DT_FLOAT, DT_DOUBLE, DT_INT32, DT_INT64.
_DT_FLOAT, _DT_DOUBLE, _DT_INT32, _DT_INT64 = 1, 2, 3, 9


def read(logdir: Path) -> Iterator[ImportedRun]:
    """One run per directory under ``logdir`` (itself included) that holds event files."""
    if not logdir.is_dir():
        raise SourceError(f"no TensorBoard log directory at {logdir}")
    run_dirs = sorted({p.parent for p in logdir.rglob(_EVENT_FILES) if p.is_file()})
    if not run_dirs:
        raise SourceError(f"no TensorBoard event files (events.out.tfevents.*) in {logdir}")
    for run_dir in run_dirs:
        yield read_run(run_dir, name=run_dir.relative_to(logdir).as_posix())


def read_run(run_dir: Path, name: str) -> ImportedRun:
    """The scalars of the event files directly in ``run_dir``, in file order."""
    key = hashlib.sha256()
    points: list[Point] = []
    scalar_times: list[float] = []
    other_times: list[float] = []  # the file's creation, text, images...
    for path in sorted(run_dir.glob(_EVENT_FILES)):
        for index, record in enumerate(records(path)):
            if index == 0:
                key.update(record)
            try:
                wall_time, step, values = _event(record)
            except WireError:
                continue  # not an Event: skip the record, as TensorBoard does
            (scalar_times if values else other_times).append(wall_time)
            points.extend(Point(tag, value, step, wall_time) for tag, value in values)
    # The run's span is its scalars' when it has any (what an import is about).
    times = scalar_times or other_times
    digest = key.hexdigest()[:16]
    return ImportedRun(
        source=SOURCE,
        key=digest,
        run_id=run_id_for(SOURCE, digest),
        name=None if name == "." else name,
        started=min(times, default=0.0),
        finished=max(times, default=0.0),
        status="completed",
        tags=[f"logdir:{name}"],
        points=points,
    )


def records(path: Path) -> Iterator[bytes]:
    """The records of a TFRecord file; a torn last record (a writer still running or
    killed) ends the file."""
    with path.open("rb") as f:
        while True:
            head = f.read(12)
            if len(head) < 12:
                return
            (length,) = struct.unpack("<Q", head[:8])
            data = f.read(length)
            if len(data) < length or len(f.read(4)) < 4:
                return
            yield data


def _event(record: bytes) -> tuple[float, int, list[tuple[str, float]]]:
    """(wall_time, step, [(tag, value)]) of one ``Event``."""
    wall_time, step = 0.0, 0  # proto3 leaves a 0 step out
    values: list[tuple[str, float]] = []
    for number, wire, value in fields(record):
        if number == 1 and wire == FIXED64 and isinstance(value, bytes):
            wall_time = double(value)
        elif number == 2 and wire == VARINT and isinstance(value, int):
            step = signed(value)
        elif number == 5 and wire == BYTES and isinstance(value, bytes):  # summary
            for n, w, summary_value in fields(value):
                if n == 1 and w == BYTES and isinstance(summary_value, bytes):
                    scalar = _scalar(summary_value)
                    if scalar is not None:
                        values.append(scalar)
    return wall_time, step, values


def _scalar(value: bytes) -> tuple[str, float] | None:
    """(tag, number) of a ``Summary.Value`` that is a scalar, else None."""
    tag, simple, plugin, tensor = "", None, "", None
    for number, wire, field in fields(value):
        if number == 1 and wire == BYTES:
            tag = text(field)
        elif number == 2 and wire == FIXED32 and isinstance(field, bytes):
            simple = _shortest(field)
        elif number == 9 and wire == BYTES and isinstance(field, bytes):
            plugin = _plugin_name(field)
        elif number == 8 and wire == BYTES and isinstance(field, bytes):
            tensor = field
    if simple is not None:
        return tag, simple
    if tensor is not None and plugin == "scalars":
        scalar = _tensor_scalar(tensor)
        return None if scalar is None else (tag, scalar)
    return None


def _shortest(raw: bytes) -> float:
    """A 32-bit float as the shortest decimal that is the same float32 (0.1, not
    0.10000000149011612: what was logged, not float32's error)."""
    value = single(raw)
    for digits in range(6, 10):
        short = float(f"{value:.{digits}g}")
        if struct.pack("<f", short) == raw:
            return short
    return value


def _plugin_name(metadata: bytes) -> str:
    for number, wire, field in fields(metadata):
        if number == 1 and wire == BYTES and isinstance(field, bytes):  # plugin_data
            for n, w, name in fields(field):
                if n == 1 and w == BYTES:
                    return text(name)
    return ""


def _tensor_scalar(tensor: bytes) -> float | None:
    """The single number of a ``TensorProto`` (float, double, int32 or int64)."""
    dtype, content, listed = 0, b"", list[float]()
    for number, wire, field in fields(tensor):
        if number == 1 and wire == VARINT and isinstance(field, int):
            dtype = field
        elif number == 4 and wire == BYTES and isinstance(field, bytes):
            content = field
        elif number == 5 and isinstance(field, bytes):  # float_val, packed or not
            listed += [single(field[i : i + 4]) for i in range(0, len(field) - 3, 4)]
        elif number == 6 and isinstance(field, bytes):  # double_val
            listed += [double(field[i : i + 8]) for i in range(0, len(field) - 7, 8)]
        elif number in (7, 10):  # int_val, int64_val
            listed += _varints(field)
    if listed:
        return listed[0]
    sizes = {
        _DT_FLOAT: ("<f", 4),
        _DT_DOUBLE: ("<d", 8),
        _DT_INT32: ("<i", 4),
        _DT_INT64: ("<q", 8),
    }
    if dtype in sizes and len(content) == sizes[dtype][1]:
        return float(struct.unpack(sizes[dtype][0], content)[0])
    return None


def _varints(field: int | bytes) -> list[float]:
    """An ``int_val``/``int64_val`` field: one varint, or a packed run of them."""
    if isinstance(field, int):
        return [float(signed(field))]
    out: list[float] = []
    pos = 0
    while pos < len(field):
        number, pos = varint(field, pos)
        out.append(float(signed(number)))
    return out
