"""The CLI reference in docs/cli.md is exactly what the commands' --help says."""

from __future__ import annotations

import importlib.util
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_cli_reference_is_current() -> None:
    spec = importlib.util.spec_from_file_location("gen_cli_docs", ROOT / "tools/gen_cli_docs.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    committed = (ROOT / "docs" / "cli.md").read_text()
    assert committed == module.render(), "docs/cli.md is stale: run `make docs`"


def test_every_command_is_documented() -> None:
    from whirr.cli.main import COMMANDS

    text = (ROOT / "docs" / "cli.md").read_text()
    missing = [name for name in COMMANDS if f"`whirr {name}`" not in text]
    assert not missing, f"undocumented commands: {missing}"
