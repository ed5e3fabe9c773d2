"""``whirr rebuild`` from the newest checkpoint, ``--full`` from position 0, and a damaged
checkpoint ignored with one warning line (the real CLI, a real project)."""

from __future__ import annotations

import re

from cli_runner import run_cli

from whirr.project import Project


def test_rebuild_from_a_checkpoint_and_in_full(project: Project) -> None:
    for _ in range(3):
        run_cli("submit", "--", "true", cwd=project.root, check=True)
    run_cli("cancel", "2", cwd=project.root, check=True)
    before = run_cli("status", "--all", "--json", cwd=project.root, check=True).stdout
    first = run_cli("rebuild", cwd=project.root, check=True)
    assert re.fullmatch(r"Rebuilt views from 5 events in \d+\.\d\ds\n", first.stdout)
    checkpoints = sorted((project.dir / "checkpoints").glob("views-*.db"))
    assert [p.name for p in checkpoints] == ["views-000000000005.db"]
    again = run_cli("rebuild", cwd=project.root, check=True)
    assert again.stdout.startswith("Rebuilt views from 0 events in ")
    full = run_cli("rebuild", "--full", cwd=project.root, check=True)
    assert full.stdout.startswith("Rebuilt views from 5 events (a full replay from position 0)")
    assert run_cli("status", "--all", "--json", cwd=project.root, check=True).stdout == before

    checkpoints[0].write_bytes(b"not a checkpoint" * 100)
    damaged = run_cli("rebuild", cwd=project.root, check=True)
    assert damaged.stdout.startswith("Rebuilt views from 5 events in ")
    [warning] = damaged.stderr.splitlines()
    assert warning.startswith("Warning: ignored the checkpoint at position 5 (")
    assert "it cannot be read" in warning
    assert run_cli("status", "--all", "--json", cwd=project.root, check=True).stdout == before
