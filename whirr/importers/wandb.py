"""Reading W&B offline runs without wandb: ``wandb/offline-run-*/run-<id>.wandb``.

The file is W&B's "datastore": a 7-byte header (``:W&B``, magic ``0xBEE1``, version 0)
then LevelDB's log format (32 KiB blocks of chunks: ``uint32`` CRC, ``uint16`` length,
``uint8`` type full/first/middle/last), each record a ``wandb_internal.Record`` protobuf,
decoded here with ``whirr.importers.protowire`` (field numbers from wandb's
``wandb_internal.proto``). wandb 0.2x and later have no Python reader of their own for it
(the Go core writes it), and the run's ``files/`` folder of an offline run holds neither
its config nor its history, so this is the one complete source.

Read: the run record (id, project, name, tags, host, start time, config), config
updates, history rows (numbers and booleans; ``_step`` is the step, ``_timestamp`` the
time; media, tables and histograms are not imported), summary updates, and the exit
record (exit code). A run with no exit record was still running or was killed.
"""

from __future__ import annotations

import json
import struct
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from whirr.importers.model import ImportedRun, Outcome, Point, SourceError
from whirr.importers.protowire import BYTES, VARINT, WireError, fields, signed, text
from whirr.importers.values import finite, run_id_for

SOURCE = "wandb"
_HEADER = b":W&B" + struct.pack("<HB", 0xBEE1, 0)
_BLOCK = 32 * 1024
_FULL, _FIRST, _MIDDLE, _LAST = 1, 2, 3, 4
# wandb_internal.Record's fields that an import reads.
_HISTORY, _SUMMARY, _CONFIG, _RUN, _EXIT = 2, 3, 5, 17, 18


def read(directory: Path) -> Iterator[ImportedRun]:
    """Every run under ``directory``: a ``wandb/`` folder, a project folder holding one,
    or one run folder (``offline-run-...``, ``run-...``)."""
    if not directory.is_dir():
        raise SourceError(f"no W&B directory at {directory}")
    # ``wandb/latest-run`` is a link to a run folder: each file once, by its real path.
    files = sorted({p.resolve() for p in directory.rglob("run-*.wandb") if p.is_file()})
    if not files:
        raise SourceError(f"no W&B run files (run-<id>.wandb) in {directory}")
    for path in files:
        yield read_run(path)


def read_run(path: Path) -> ImportedRun:
    """One run from its ``.wandb`` file."""
    run = _Run()
    for record in records(path):
        try:
            run.add(record)
        except (WireError, ValueError):
            continue  # one unreadable record: keep the rest of the run
    if not run.run_id:
        raise SourceError(f"{path} holds no run record (not a W&B run file?)")
    return run.build(path)


def records(path: Path) -> Iterator[bytes]:
    """The records of a datastore file; a torn tail (a run still writing) ends it."""
    data = path.read_bytes()
    if not data.startswith(_HEADER):
        raise SourceError(f"{path} is not a W&B run file (bad header)")
    pos, pending = len(_HEADER), b""
    while pos + 7 <= len(data):
        left = _BLOCK - pos % _BLOCK
        if left < 7:  # the block's trailer is zero padding
            pos += left
            continue
        _crc, length, kind = struct.unpack("<IHB", data[pos : pos + 7])
        pos += 7
        if kind == 0 and length == 0:
            continue  # padding (a writer preallocating)
        chunk = data[pos : pos + length]
        pos += length
        if len(chunk) < length:
            return
        if kind == _FULL:
            yield chunk
        elif kind == _FIRST:
            pending = chunk
        elif kind == _MIDDLE:
            pending += chunk
        elif kind == _LAST:
            yield pending + chunk
            pending = b""


class _Run:
    """What the records of one run say, folded in order."""

    def __init__(self) -> None:
        self.run_id = ""
        self.project = ""
        self.name: str | None = None
        self.tags: list[str] = []
        self.host = ""
        self.started: float | None = None
        self.config: dict[str, Any] = {}
        self.summary: dict[str, Any] = {}
        self.points: list[Point] = []
        self.last_time: float | None = None
        self.exit_code: int | None = None
        self.runtime = 0

    def add(self, record: bytes) -> None:
        for number, wire, value in fields(record):
            if wire != BYTES or not isinstance(value, bytes):
                continue
            if number == _RUN:
                self._run(value)
            elif number == _CONFIG:
                self._items(value, self.config)
            elif number == _SUMMARY:
                self._items(value, self.summary)
            elif number == _HISTORY:
                self._history(value)
            elif number == _EXIT:
                self._exit(value)

    def _run(self, body: bytes) -> None:
        for number, _, value in fields(body):
            if number == 1:
                self.run_id = text(value)
            elif number == 3:
                self.project = text(value)
            elif number == 4 and isinstance(value, bytes):
                self._items(value, self.config)
            elif number == 8:
                self.name = text(value) or None
            elif number == 10:
                self.tags.append(text(value))
            elif number == 13:
                self.host = text(value)
            elif number == 17 and isinstance(value, bytes):  # google.protobuf.Timestamp
                seconds = nanos = 0
                for n, w, v in fields(value):
                    if n == 1 and w == VARINT and isinstance(v, int):
                        seconds = signed(v)
                    elif n == 2 and w == VARINT and isinstance(v, int):
                        nanos = v
                self.started = seconds + nanos / 1e9

    @staticmethod
    def _items(body: bytes, into: dict[str, Any]) -> None:
        """A ConfigRecord/SummaryRecord: ``update`` (1) and ``remove`` (2) items."""
        for number, _, item in fields(body):
            if not isinstance(item, bytes) or number not in (1, 2):
                continue
            key, value = _item(item)
            if key is None:
                continue
            if number == 2:
                into.pop(key, None)
            else:
                into[key] = value

    def _history(self, body: bytes) -> None:
        row: dict[str, Any] = {}
        step: int | None = None
        for number, _, item in fields(body):
            if number == 1 and isinstance(item, bytes):
                key, value = _item(item)
                if key is not None:
                    row[key] = value
            elif number == 2 and isinstance(item, bytes):  # HistoryStep
                step = 0
                for n, w, v in fields(item):
                    if n == 1 and w == VARINT and isinstance(v, int):
                        step = signed(v)
        if isinstance(row.get("_step"), int):
            step = row["_step"]
        when = row.get("_timestamp")
        if not isinstance(when, int | float):
            when = self.last_time or self.started or 0.0
        self.last_time = float(when)
        for key, value in row.items():
            if key.startswith("_") or isinstance(value, dict | list | str):
                continue  # wandb's own keys; media, tables, histograms
            self.points.append(Point(key, value, step, float(when)))

    def _exit(self, body: bytes) -> None:
        self.exit_code = 0  # proto3 leaves a 0 exit code out
        for number, wire, value in fields(body):
            if number == 1 and wire == VARINT and isinstance(value, int):
                self.exit_code = signed(value)
            elif number == 2 and wire == VARINT and isinstance(value, int):
                self.runtime = signed(value)

    def build(self, path: Path) -> ImportedRun:
        started = self.started if self.started is not None else path.stat().st_mtime
        ends = [t for t in (self.last_time, started + self.runtime) if t is not None]
        status: Outcome
        error = None
        if self.exit_code is None:
            status, error = "crashed", "the W&B run recorded no exit"
        elif self.exit_code == 0:
            status = "completed"
        else:
            status, error = "failed", f"exited with code {self.exit_code}"
        key = f"{self.project}/{self.run_id}" if self.project else self.run_id
        return ImportedRun(
            source=SOURCE,
            key=key,
            run_id=run_id_for(SOURCE, self.run_id),
            name=self.name,
            started=started,
            finished=max(ends) if self.exit_code is not None else None,
            status=status,
            error=error,
            config={k: v for k, v in self.config.items() if not k.startswith("_")},
            summary={k: v for k, v in self.summary.items() if not k.startswith("_")},
            tags=([f"project:{self.project}"] if self.project else []) + self.tags,
            points=self.points,
        )


def _item(body: bytes) -> tuple[str | None, Any]:
    """(key, value) of a HistoryItem/ConfigItem/SummaryItem: ``key`` (1) or the parts of
    ``nested_key`` (2) joined with ``.``, and the JSON in ``value_json`` (16)."""
    key, nested, raw = "", list[str](), None
    for number, _, value in fields(body):
        if number == 1:
            key = text(value)
        elif number == 2:
            nested.append(text(value))
        elif number == 16:
            raw = text(value)
    name = key or ".".join(nested)
    if not name or raw is None:
        return None, None
    try:
        return name, finite(json.loads(raw))
    except ValueError:
        return name, raw
