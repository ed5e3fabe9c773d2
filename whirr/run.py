"""Reading and writing a run's files (``meta.json``, ``metrics.jsonl``)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import msgspec

_json = msgspec.json.Encoder()


def write_meta(run_dir: str | os.PathLike[str], meta: dict[str, Any]) -> None:
    """Write ``meta.json`` atomically (temp file + rename): readers never see half a file."""
    path = Path(run_dir) / "meta.json"
    tmp = path.with_name(f".meta.json.{os.getpid()}.tmp")
    tmp.write_bytes(msgspec.json.format(_json.encode(meta), indent=2))
    os.replace(tmp, path)
