"""What every backend's checkpoints share: which code folded them, how a rebuild streams
the log, and how an ignored checkpoint is reported.

A checkpoint is the views at one log position P, written atomically: a rebuild starts
from the newest valid one and replays only the events after P. Replaying from a
checkpoint equals a full replay because the views at P *are* the fold of events 1..P (a
checkpoint is only ever written from views folded by this code) and a fold is a left
fold: ``fold(1..H) == fold(P+1..H, start=fold(1..P))``. That holds only while the fold
is the same code, so each checkpoint records a fingerprint of the code that folds
(``whirr.events`` and ``whirr.projections``): another whirr's checkpoint is ignored, not
trusted, and so is one whose bytes or log no longer match (docs/architecture.md,
"Checkpoints").
"""

from __future__ import annotations

import contextlib
import gc
import hashlib
import sys
import threading
from collections.abc import Callable, Iterator
from functools import cache
from pathlib import Path

import msgspec

#: Bumped when what a checkpoint holds changes shape (beyond the views' own schema).
FORMAT = 1
#: Events read, decoded and folded at a time by a streaming replay: memory stays bounded
#: by a batch, whatever the length of the log.
BATCH = 5_000
#: A store takes a checkpoint by itself each time its log passes a multiple of this.
EVERY = 100_000


#: The cyclic garbage collector's first threshold while a replay runs (Python's default:
#: 700 allocations). A replay allocates millions of short-lived, acyclic objects (rows,
#: events, views) and a batch of them is alive at once, so with the default the collector
#: ran every 700 of them and moved each batch into the older generations, to be scanned
#: again there: a quarter of a full replay's time. Nothing is left uncollected: the
#: threshold only spaces the collections out, and it is restored afterwards.
GC_THRESHOLD = 100_000
_gc_lock = threading.Lock()
_gc_holders = [0]


@contextlib.contextmanager
def fewer_collections() -> Iterator[None]:
    """Space the garbage collector's runs out to ``GC_THRESHOLD`` allocations meanwhile
    (a replay's loop); the previous threshold comes back when the last holder leaves."""
    with _gc_lock:
        if _gc_holders[0] == 0:
            first, *rest = gc.get_threshold()
            _gc_holders.append(first)
            gc.set_threshold(max(first, GC_THRESHOLD), *rest)
        _gc_holders[0] += 1
    try:
        yield
    finally:
        with _gc_lock:
            _gc_holders[0] -= 1
            if _gc_holders[0] == 0:
                _, *rest = gc.get_threshold()
                gc.set_threshold(_gc_holders.pop(), *rest)


class Stamp(msgspec.Struct, frozen=True):
    """What a checkpoint file says about itself."""

    format: int
    fingerprint: str
    schema: int
    position: int
    #: Digests of the events at positions 1 and ``position`` ("" at position 0): the
    #: checkpoint belongs to a log holding these events there, and to no other.
    first: str
    last: str


#: Told (one line) when a checkpoint is ignored; replaceable (tests, a server's log).
Warn = Callable[[str], None]


def _stderr(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


_warn: list[Warn] = [_stderr]


def warn(message: str) -> None:
    """Say why a checkpoint was ignored (on stderr unless ``listen`` said otherwise)."""
    _warn[0](f"Warning: {message}")


def listen(listener: Warn) -> Warn:
    """Send checkpoint warnings to ``listener``; returns the previous listener."""
    previous, _warn[0] = _warn[0], listener
    return previous


@cache
def fingerprint() -> str:
    """A digest of the code that folds the views: the sources of ``whirr.events`` and
    ``whirr.projections`` (and the checkpoint ``FORMAT``). A checkpoint taken by other
    code (an upgrade, a new event) does not match and is replayed over instead."""
    import whirr.events
    import whirr.projections

    digest = hashlib.sha256(f"format {FORMAT}\n".encode())
    for package in (whirr.events, whirr.projections):
        root = Path(package.__file__ or "").parent
        for path in sorted(root.glob("*.py")):
            digest.update(f"{package.__name__}/{path.name}\n".encode())
            digest.update(path.read_bytes())
    return digest.hexdigest()


def why_untrusted(
    stamp: Stamp, schema: int, head: int, stamp_at: Callable[[int], Stamp]
) -> str | None:
    """Why a checkpoint stamped ``stamp`` must not be trusted by this code, for a log at
    ``head`` whose views have schema version ``schema`` (``stamp_at``: the stamp this
    code and this log give a position); None when it may be."""
    if stamp.format != FORMAT or stamp.schema != schema:
        return "it is of another format"
    if stamp.position > head:
        return f"it is ahead of the log (position {stamp.position}, head {head})"
    want = stamp_at(stamp.position)
    if stamp.fingerprint != want.fingerprint:
        return "another version of whirr took it"
    if (stamp.first, stamp.last) != (want.first, want.last):
        return "it belongs to another event log"
    return None


def crossed(first: int, last: int, every: int = EVERY) -> bool:
    """Whether appending positions ``first``..``last`` passed a multiple of ``every``."""
    return every > 0 and last // every > (first - 1) // every
