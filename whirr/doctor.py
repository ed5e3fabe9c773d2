"""Health checks behind ``whirr doctor``."""

from __future__ import annotations

import shutil
import subprocess
from datetime import UTC, datetime

import msgspec


class Check(msgspec.Struct):
    """One check: ``ok`` is True, False (a problem) or None (not applicable)."""

    name: str
    ok: bool | None
    detail: str


def run_checks() -> list[Check]:
    """Run every check; never raises for a problem it can describe."""
    from whirr.config import ConfigError
    from whirr.project import ProjectNotFound, find_project
    from whirr.store.protocol import StoreError
    from whirr.store.sqlite import SCHEMA_VERSION

    checks: list[Check] = []
    try:
        project = find_project()
    except ProjectNotFound as exc:
        return [Check("project", False, str(exc))]
    checks.append(Check("project", True, str(project.root)))
    try:
        config = project.config
        checks.append(Check("config", True, str(project.config_path)))
    except ConfigError as exc:
        checks.append(Check("config", False, str(exc)))
        config = None
    try:
        store = project.open_store()
    except StoreError as exc:
        checks.append(Check("database", False, str(exc)))
        return checks
    try:
        conn = store._conn()
        mode = conn.execute("PRAGMA journal_mode").fetchall()[0][0]
        integrity = conn.execute("PRAGMA quick_check").fetchall()[0][0]
        checks.append(Check("database", integrity == "ok", f"{project.db_path} ({integrity})"))
        checks.append(Check("WAL mode", mode == "wal", f"journal_mode={mode}"))
        version = store.schema_version()
        checks.append(
            Check(
                "schema version",
                version == SCHEMA_VERSION,
                f"{version} (this whirr: {SCHEMA_VERSION})",
            )
        )
        now = datetime.now(UTC)
        timeout = config.heartbeat_timeout if config else 120.0
        workers = [w for w in store.workers() if not w.stopped]
        online = [w for w in workers if w.is_online(now, timeout)]
        silent = [w.id for w in workers if not w.is_online(now, timeout)]
        detail = f"{len(online)} online"
        if silent:
            detail += f"; not heard from within {timeout:.0f}s: {', '.join(silent)}"
        queued = store.job_counts().get("queued", 0)
        if queued and not online:
            detail += f"; {queued} job(s) queued and no worker online (start `whirr worker`)"
        checks.append(Check("workers", not silent, detail))
    except StoreError as exc:
        checks.append(Check("database", False, str(exc)))
    finally:
        store.close()
    checks.append(_gpu_check())
    return checks


def _gpu_check() -> Check:
    smi = shutil.which("nvidia-smi")
    if smi is None:
        return Check("GPUs", None, "nvidia-smi not found; CPU-only")
    try:
        out = subprocess.run(
            [smi, "--query-gpu=index,name,memory.total", "--format=csv,noheader"],
            capture_output=True,
            text=True,
            timeout=10,
            check=True,
        ).stdout.strip()
    except (subprocess.SubprocessError, OSError) as exc:
        return Check("GPUs", False, f"nvidia-smi failed: {exc}")
    lines = [line.strip() for line in out.splitlines() if line.strip()]
    return Check("GPUs", True, f"{len(lines)} found: " + "; ".join(lines))
