"""Imports flow one way through the rooms (DESIGN.md §6, docs/architecture.md "The seam"):

    events, wire -> projections -> store -> services -> remote client -> facade -> edges

A small AST check over every module of the package: pure rooms do no I/O, a room imports
only rooms below it (or itself), every module belongs to a room, and an edge never
imports another edge, but for the two launches named in ``LAUNCHES``. Plus: ``import
whirr`` pulls in none of the heavy optional libraries.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[2] / "whirr"

#: The rooms, lowest first: each entry names the top-level modules/packages of ``whirr``
#: in that room. A module may import its own room and the rooms before it.
ROOMS: list[tuple[str, set[str]]] = [
    ("pure", {"events", "wire", "decoding", "clock"}),
    ("projections", {"projections"}),
    (
        "store",
        {
            "store",
            "project",
            "identity",
            "backup",
            "config",
            "runfiles",
            "run",
            "gpus",
            "filemodes",
            "containment",
            "migrate",
        },
    ),
    ("services", {"services", "sweeps", "ablations", "studies", "snapshot", "importers"}),
    ("remote client", {"client", "client_studies", "_httpx", "shipping"}),
    ("facade", {"facade"}),
    # Libraries the edges share: reports over runs (DuckDB), the health checks.
    ("reports", {"analytics", "doctor"}),
    # What the two sanic edges share: the async bridge, request parsing, Host checks.
    ("web", {"web"}),
    ("edges", {"cli", "api", "dashboard", "worker", "tracking", "watch", "integrations"}),
]
EDGES = ROOMS[-1][1]
PURE = {"events", "wire"}
#: The only imports between edges: the CLI starts the long-running edges (`whirr server`,
#: `worker`, `watch`, `dashboard`) and the server mounts the dashboard.
LAUNCHES = {"cli": {"api", "worker", "watch", "dashboard"}, "api": {"dashboard"}}
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


def room_of(name: str) -> int:
    """The index in ROOMS of top-level module ``name`` (KeyError when in none)."""
    for index, (_, members) in enumerate(ROOMS):
        if name in members:
            return index
    raise KeyError(name)


def modules_of(root: Path) -> list[tuple[str, Path]]:
    """(top-level module, path) of every module of the package at ``root``."""
    return [
        (p.relative_to(root).parts[0].removesuffix(".py"), p)
        for p in sorted(root.rglob("*.py"))
        if p != root / "__init__.py"
    ]


def whirr_imports(path: Path) -> list[str]:
    """The top-level ``whirr`` modules ``path`` imports (``whirr.store.x`` -> ``store``)."""
    return sorted({m.split(".")[1] for m in imported_modules(path) if m.startswith("whirr.")})


def violations(root: Path) -> list[str]:
    """Every import of the package at ``root`` that goes up a room, or from one edge to
    another outside ``LAUNCHES``."""
    wrong = []
    for own, path in modules_of(root):
        here = room_of(own)
        for target in whirr_imports(path):
            if target == own:
                continue
            there = room_of(target)
            where = path.relative_to(root)
            if there > here:
                wrong.append(f"{where} ({ROOMS[here][0]}) imports {target} ({ROOMS[there][0]})")
            elif here == there == len(ROOMS) - 1 and target not in LAUNCHES.get(own, set()):
                wrong.append(f"{where}: edge {own} imports edge {target}")
    return wrong


@pytest.mark.parametrize("room", sorted(PURE))
def test_pure_rooms_do_no_io(room: str) -> None:
    for path in sorted((PACKAGE / room).rglob("*.py")):
        bad = {m for m in imported_modules(path) if m.split(".")[0] in IO_MODULES}
        assert not bad, f"{path.relative_to(PACKAGE)} imports I/O modules {sorted(bad)}"


def test_every_module_is_in_a_room() -> None:
    rooms = set().union(*(members for _, members in ROOMS))
    homeless = sorted({own for own, _ in modules_of(PACKAGE)} - rooms)
    assert not homeless, f"modules in no room of ROOMS: {homeless}"


def test_imports_only_go_down_or_launch() -> None:
    wrong = violations(PACKAGE)
    assert not wrong, "\n".join(wrong)


def test_the_check_finds_an_upward_and_a_sideways_import(tmp_path: Path) -> None:
    (tmp_path / "store").mkdir()
    (tmp_path / "store" / "x.py").write_text("from whirr.facade import open_whirr\n")
    (tmp_path / "worker").mkdir()
    (tmp_path / "worker" / "y.py").write_text("import whirr.watch.app\nimport whirr.store\n")
    (tmp_path / "cli").mkdir()
    (tmp_path / "cli" / "z.py").write_text("from whirr.worker import loop\n")  # a launch
    assert violations(tmp_path) == [
        "store/x.py (store) imports facade (facade)",
        "worker/y.py: edge worker imports edge watch",
    ]


def module_graph(root: Path) -> dict[str, set[str]]:
    """Which modules of the package at ``root`` import which (imports of a package's
    ``__init__`` left out: a package re-exporting its own modules is no cycle)."""
    names: dict[str, Path] = {}
    packages = set()
    for path in root.rglob("*.py"):
        parts = ["whirr", *path.relative_to(root).with_suffix("").parts]
        if parts[-1] == "__init__":
            parts.pop()
            packages.add(".".join(parts))
        names[".".join(parts)] = path
    graph = {}
    for name, path in names.items():
        found = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                for alias in node.names:
                    full = f"{node.module}.{alias.name}"
                    found.add(full if full in names else node.module)
            elif isinstance(node, ast.Import):
                found.update(alias.name for alias in node.names)
        graph[name] = {m for m in found if m in names and m not in packages and m != name}
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """One import path per cycle found by a depth-first walk."""
    found, done, path = [], set(), []

    def visit(node: str) -> None:
        if node in path:
            found.append([*path[path.index(node) :], node])
            return
        if node in done:
            return
        path.append(node)
        for nxt in sorted(graph[node]):
            visit(nxt)
        path.pop()
        done.add(node)

    for node in sorted(graph):
        visit(node)
    return found


def test_no_import_cycles_between_modules() -> None:
    found = cycles(module_graph(PACKAGE))
    assert not found, "\n".join(" -> ".join(c) for c in found)


def test_the_cycle_check_finds_one(tmp_path: Path) -> None:
    (tmp_path / "cli").mkdir()
    (tmp_path / "cli" / "a.py").write_text("from whirr.cli.b import x\n")
    (tmp_path / "cli" / "b.py").write_text("def f():\n    from whirr.cli import a\n")
    assert cycles(module_graph(tmp_path)) == [["whirr.cli.a", "whirr.cli.b", "whirr.cli.a"]]


def test_import_whirr_is_light() -> None:
    code = (
        "import sys, whirr; heavy = {'duckdb', 'polars', 'sanic', 'psycopg', 'numpy', "
        "'httpx'} & set(sys.modules); print(sorted(heavy))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout.strip()
    assert out == "[]"
