"""Imports flow one way (DESIGN.md §6): events -> projections -> store -> services -> edges.

A small AST check: events/ and projections/ import nothing with I/O, lower layers never
import higher ones, and `import whirr` pulls in none of the heavy optional libraries.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[2] / "whirr"
LAYERS = ["events", "projections", "store", "services"]
EDGES = {"cli", "api", "worker", "tracking", "analytics"}
IO_MODULES = {
    "apsw",
    "psycopg",
    "psycopg_pool",
    "sanic",
    "click",
    "duckdb",
    "polars",
    "httpx",
    "os",
    "socket",
    "subprocess",
    "sqlite3",
    "watchfiles",
    "pathlib",
    "shutil",
    "io",
}


def imported_modules(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
    return found


def files_of(layer: str) -> list[Path]:
    return sorted((PACKAGE / layer).rglob("*.py"))


@pytest.mark.parametrize("layer", ["events", "wire", "projections"])
def test_pure_layers_do_no_io(layer: str) -> None:
    for path in files_of(layer):
        bad = {m for m in imported_modules(path) if m.split(".")[0] in IO_MODULES}
        assert not bad, f"{path.relative_to(PACKAGE)} imports I/O modules {sorted(bad)}"


@pytest.mark.parametrize("index", range(len(LAYERS)))
def test_lower_layers_never_import_higher(index: int) -> None:
    layer = LAYERS[index]
    forbidden = set(LAYERS[index + 1 :]) | EDGES
    for path in files_of(layer):
        for module in imported_modules(path):
            parts = module.split(".")
            if parts[0] == "whirr" and len(parts) > 1:
                assert parts[1] not in forbidden, (
                    f"{path.relative_to(PACKAGE)} (layer {layer}) imports {module}"
                )


def test_import_whirr_is_light() -> None:
    code = (
        "import sys, whirr; heavy = {'duckdb', 'polars', 'sanic', 'psycopg', 'numpy', "
        "'httpx'} & set(sys.modules); print(sorted(heavy))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout.strip()
    assert out == "[]"
