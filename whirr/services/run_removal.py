"""Removing a deleted run's directory (``whirr runs delete``), never anything outside it."""

from __future__ import annotations

import shutil
from pathlib import Path

from whirr.services.run_files import check_run_id


def remove_run_dir(runs_dir: Path, run_id: str) -> bool:
    """Remove ``runs_dir/<run_id>`` and everything in it; whether there was one. A symlink
    in its place is unlinked, never followed (nor are links inside: ``rmtree`` unlinks
    them), so a run directory pointing elsewhere cannot take that place's files along."""
    path = runs_dir / check_run_id(run_id)
    if path.is_symlink():
        path.unlink()
        return True
    if not path.is_dir():
        return False
    shutil.rmtree(path)
    return True
