"""A run's JSONL segment (``metrics.jsonl`` or ``system.jsonl``): where it is, what columns
it holds, and the explicit options DuckDB reads it with."""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from whirr.facade.protocol import Whirr
from whirr.wire import schemas

#: The column that every whole line has; a row without it is a torn last line.
KEYS = {"metrics": "_idx", "system": "_timestamp"}
#: Statuses of a run whose files can still grow.
LIVE_STATUSES = frozenset({"running"})


@dataclass(frozen=True)
class Segment:
    """One run's file of one kind, with the stamp (size, mtime) it had when looked at."""

    run_id: str
    kind: str
    path: Path
    size: int
    mtime_ns: int
    finished: bool

    @property
    def key(self) -> str:
        """The column present on every whole line."""
        return KEYS[self.kind]


#: How whirr writes Parquet (the cache and exports). DuckDB tries a dictionary for every
#: column of every row group by default; for the mostly-unique columns of metrics
#: (timestamps, values) that attempt is wasted and was most of the write: 1M rows of
#: ``_idx, _timestamp, step, loss, acc`` took 0.6 s of CPU, 0.2 s with dictionaries capped
#: at 1,024 values (low-cardinality columns such as ``run_id`` and ``metric`` keep theirs).
PARQUET_OPTIONS = "FORMAT parquet, DICTIONARY_SIZE_LIMIT 1024"


def json_options() -> str:
    """The ``read_json`` options whirr always spells out (see the module docstring of
    ``schema``): one object per line, and a torn last line skipped rather than fatal."""
    return "format='newline_delimited', ignore_errors=true, maximum_object_size=67108864"


def locate(whirr: Whirr, runs: Sequence[schemas.Run], kind: str) -> list[Segment]:
    """The non-empty ``<kind>.jsonl`` of each run, in the order of ``runs``: a project's
    own files, or up-to-date copies of a server's (``Whirr.local_run_files``)."""
    paths = whirr.local_run_files(runs, kind)
    found: list[Segment] = []
    for run in runs:
        path = paths.get(run.id)
        if path is None:
            continue
        try:
            st = os.stat(path)
        except OSError:
            continue
        if st.st_size:
            finished = run.status not in LIVE_STATUSES
            found.append(Segment(run.id, kind, path, st.st_size, st.st_mtime_ns, finished))
    return found
