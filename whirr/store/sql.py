"""Named SQL blocks loaded from ``.sql`` files: ``-- name: block_name`` starts a block."""

from __future__ import annotations

import importlib
from pathlib import Path


def load_queries(package: str, filename: str) -> dict[str, str]:
    """Parse ``filename`` in ``package`` into ``{name: sql}``."""
    # A plain file read beside the package's __init__: importlib.resources would pull in
    # zipfile and tempfile on every start-up for packages that are never zipped here.
    module = importlib.import_module(package)
    text = (Path(module.__file__ or "").parent / filename).read_text(encoding="utf-8")
    queries: dict[str, str] = {}
    name: str | None = None
    lines: list[str] = []
    for line in text.splitlines():
        stripped = line.strip()
        if stripped.startswith("-- name:"):
            if name is not None:
                queries[name] = "\n".join(lines).strip()
            name = stripped.removeprefix("-- name:").strip()
            lines = []
        elif name is not None and not stripped.startswith("--"):
            lines.append(line)
    if name is not None:
        queries[name] = "\n".join(lines).strip()
    return queries
