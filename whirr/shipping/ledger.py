"""The shipping ledger: what the server acknowledged of one run's files, on local disk.

One JSON file per run, ``<worker data dir>/shipping/<run_id>.json``, replaced atomically
(temp file, then rename) after every acknowledgement, so a worker killed at any instant
leaves a ledger that is at worst one acknowledgement behind. That is harmless: the server
takes an upload whose offset it already passed as a retry (it appends only the rest).

Offsets: the server counts an attempt's bytes of each stream from 0 (its *attempt-local*
offset); ``local_start`` is the byte of the local file that maps to attempt-local 0 (the
local file may hold an earlier attempt's bytes, or a seeded metrics line, before it).
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

import msgspec

from whirr.filemodes import private_dir, write_private

#: Append streams, shipped by byte offset.
STREAMS = ("output.log", "metrics.jsonl", "system.jsonl")
#: Streams shipped in whole lines only (a torn last line is never sent).
LINE_STREAMS = frozenset({"metrics.jsonl", "system.jsonl"})
#: Files replaced whole on the server when their size or mtime changes.
WHOLE_FILES = ("meta.json", "config.json", "git.json", "diff.patch", "requirements.txt")
#: Whole files larger than this are not shipped (the server refuses them too).
MAX_WHOLE_FILE = 16 * 1024 * 1024


class StreamState(msgspec.Struct, kw_only=True):
    """One append stream of one attempt."""

    #: The local byte that maps to the attempt-local offset 0.
    local_start: int = 0
    #: Attempt-local bytes the server acknowledged.
    acked: int = 0

    @property
    def position(self) -> int:
        """The local byte to send next."""
        return self.local_start + self.acked


class Stamp(msgspec.Struct, array_like=True, frozen=True):
    """A file's version as ``stat`` tells it: shipped again when either changes."""

    size: int
    mtime_ns: int


class Ledger(msgspec.Struct, kw_only=True):
    """What was shipped of one run's attempt."""

    run_id: str
    attempt: int
    #: The local run directory (where a resumed shipper reads from).
    run_dir: str
    streams: dict[str, StreamState] = msgspec.field(default_factory=dict)
    files: dict[str, Stamp] = msgspec.field(default_factory=dict)
    artifacts: dict[str, Stamp] = msgspec.field(default_factory=dict)
    #: The attempt's process ended: ship everything, then the final sizes.
    ended: bool = False
    #: The server accepted the final sizes (only whole files may change after that).
    final_sent: bool = False
    #: The final sizes it accepted (sent again when a whole file changed since).
    final: dict[str, int] | None = None

    def stream(self, name: str) -> StreamState:
        """The state of stream ``name`` (created at offset 0 when first asked for)."""
        state = self.streams.get(name)
        if state is None:
            state = self.streams[name] = StreamState()
        return state


_encode = msgspec.json.Encoder().encode
_decode = msgspec.json.Decoder(Ledger).decode


def ledger_path(ledger_dir: Path, run_id: str) -> Path:
    """Where ``run_id``'s ledger lives (run ids are checked plain names already)."""
    return ledger_dir / f"{run_id}.json"


def save(ledger_dir: Path, ledger: Ledger) -> None:
    """Write ``ledger`` atomically (owner-only, like the run files it describes)."""
    private_dir(ledger_dir)
    path = ledger_path(ledger_dir, ledger.run_id)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    write_private(tmp, _encode(ledger))
    os.replace(tmp, path)


def load(path: Path) -> Ledger | None:
    """The ledger at ``path``, or None when it is absent or unreadable (a ledger that
    does not decode is no use to anyone: the run's tail is reported missing instead)."""
    try:
        return _decode(path.read_bytes())
    except (OSError, msgspec.DecodeError, msgspec.ValidationError):
        return None


def load_all(ledger_dir: Path) -> list[Ledger]:
    """Every ledger left in ``ledger_dir`` (by a worker that did not finish shipping)."""
    try:
        paths = sorted(ledger_dir.glob("*.json"))
    except OSError:
        return []
    found = []
    for path in paths:
        if path.name.startswith("."):
            continue
        ledger = load(path)
        if ledger is not None and path.name == f"{ledger.run_id}.json":
            found.append(ledger)
    return found


def delete(ledger_dir: Path, run_id: str) -> None:
    """Forget ``run_id``'s ledger (everything was shipped, or it cannot be any more)."""
    with contextlib.suppress(FileNotFoundError):
        os.unlink(ledger_path(ledger_dir, run_id))
