"""docs/events.md lists every event and field, exactly as the code defines them."""

from __future__ import annotations

import importlib.util
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_event_catalogue_is_current() -> None:
    spec = importlib.util.spec_from_file_location(
        "gen_event_docs", ROOT / "tools/gen_event_docs.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    assert (ROOT / "docs/events.md").read_text() == module.render(), (
        "docs/events.md is stale: run `make docs`"
    )
