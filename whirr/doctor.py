"""Health checks behind ``whirr doctor``: of the project here, or of the server that
``--server``/``WHIRR_SERVER_URL`` names (the same precedence as every command)."""

from __future__ import annotations

import shutil
import stat
import subprocess
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import msgspec

if TYPE_CHECKING:
    from whirr.store.protocol import EventStore


class Check(msgspec.Struct):
    """One check: ``ok`` is True, False (a problem) or None (not applicable)."""

    name: str
    ok: bool | None
    detail: str


def run_checks(server: str | None = None) -> list[Check]:
    """Run every check of the server (``server``, else ``WHIRR_SERVER_URL``) or, with
    none, of the project here; never raises for a problem it can describe."""
    from whirr.facade import server_from_env

    url = server_from_env(server)
    return server_checks(url) if url else project_checks()


def server_checks(url: str) -> list[Check]:
    """The server answers, takes our token, runs our version and has a working store;
    which workers it has heard from."""
    from whirr.client import AuthError, WhirrClient
    from whirr.services.errors import WhirrError

    checks: list[Check] = []
    try:
        client = WhirrClient(url)
    except WhirrError as exc:
        return [Check("server", False, str(exc))]
    with client:
        base = client.url.removesuffix("/api/v1")
        try:
            health = client.health()
        except WhirrError as exc:
            return [Check("server", False, str(exc))]
        checks.append(Check("server", health.status == "healthy", f"{base} ({health.status})"))
        checks.append(_version_check(health.version, health.protocol))
        try:
            status = client.status()
        except AuthError as exc:
            checks.append(Check("token", False, str(exc)))
            return checks
        except WhirrError as exc:
            checks.append(Check("store", False, f"the server could not answer: {exc}"))
            return checks
        token = "accepted" if client.token else "none sent, none asked for (--no-auth)"
        checks.append(Check("token", True, token))
        counts = f"{status.queued} queued, {status.running} running, head {status.head}"
        checks.append(Check("store", True, f"{status.store or 'answering'} ({counts})"))
        try:
            workers = client.list_workers()
        except WhirrError as exc:
            checks.append(Check("workers", False, str(exc)))
            return checks
    live = [w for w in workers if w.status != "stopped"]
    online = [w for w in live if w.online]
    silent = [w.id for w in live if not w.online]
    detail = f"{len(online)} online"
    if silent:
        detail += f"; not heard from lately: {', '.join(silent)}"
    if status.queued and not online:
        detail += f"; {status.queued} job(s) queued and no worker online (start `whirr worker`)"
    checks.append(Check("workers", not silent, detail))
    return checks


def _version_check(version: str | None, protocol: int | None) -> Check:
    """The server's version and wire protocol against this whirr's: a server older than
    this client's protocol cannot answer all it asks (an upgrade is due); differing
    versions that speak one protocol work, and are said."""
    import whirr
    from whirr.wire.protocol import CURRENT

    ours = f"this whirr {whirr.__version__} (protocol {CURRENT})"
    if version is None:
        return Check("version", False, f"the server does not say (an older whirr); {ours}")
    detail = f"server {version} (protocol {protocol or 1}), {ours}"
    if (protocol or 1) < CURRENT:
        return Check("version", False, f"{detail}: upgrade the whirr server")
    if version != whirr.__version__:
        detail += ": versions differ (one protocol, so they work together)"
    return Check("version", True, detail)


def event_log_check(store: EventStore) -> Check:
    """Every event of the log decodes (or was voided by ``whirr repair``)."""
    from whirr.store.repair import unreadable_events

    found = unreadable_events(store)
    if not found:
        return Check("event log", True, f"{store.head()} events, all decode")
    first = found[0]
    shown = ", ".join(str(r.position) for r in found[:20]) + (" ..." if len(found) > 20 else "")
    why = f"{first.event.event_type}: {first.event.error}"  # type: ignore[attr-defined]
    return Check(
        "event log",
        False,
        f"{len(found)} event(s) do not decode, at position(s) {shown} (position "
        f"{first.position}: {why}); commands skip them; `whirr repair` voids them",
    )


def project_checks() -> list[Check]:
    """The project here: config, database, WAL, schema version, workers, GPUs."""
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
    checks.append(permissions_check(project.dir))
    try:
        config = project.config
        checks.append(Check("config", True, str(project.config_path)))
    except ConfigError as exc:
        checks.append(Check("config", False, str(exc)))
        config = None
    wal = _wal_check(project.db_path)
    checks.append(wal)
    if wal.ok is False:
        return checks  # opening the store now could overwrite the damaged WAL: stop here
    try:
        store = project.open_store()  # checks the project's identity (whirr.identity)
    except StoreError as exc:
        checks.append(Check("database", False, str(exc)))
        return checks
    checks.append(_identity_check(project))
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
        checks.append(event_log_check(store))
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
    checks.append(containment_check())
    return checks


def _wal_check(db: Path) -> Check:
    """Every frame of the WAL against its checksum (SQLite silently drops a damaged
    frame and every transaction after it)."""
    from whirr.identity import wal_damage

    try:
        damage = wal_damage(db)
    except OSError as exc:
        return Check("WAL", False, f"cannot read {db}-wal: {exc.strerror or exc}")
    if damage:
        return Check(
            "WAL",
            False,
            f"{damage}: transactions in it are lost to SQLite. Restore whirr.db together "
            f"with whirr.db-wal from a backup, or start over deliberately with "
            f"`whirr init --force-new-history`",
        )
    return Check("WAL", True, "every frame passes its checksum")


def _identity_check(project: Any) -> Check:
    from whirr.identity import read_project_id

    known = read_project_id(project)
    if known is None:
        return Check("identity", False, f"{project.dir / 'project-id'} is missing")
    return Check("identity", True, f"project {known[0]}: the database holds its history")


#: (who, the directory bit that lets them in, the file bit that lets them read)
_CLASSES = (("group", stat.S_IXGRP, stat.S_IRGRP), ("others", stat.S_IXOTH, stat.S_IROTH))


def permissions_check(whirr_dir: Path) -> Check:
    """Can other users read the database (every job's command, config and environment)?

    whirr creates ``.whirr/`` 0700 and ``whirr.db`` 0600 (``whirr.filemodes``); a
    project made by an older whirr, or a copy, may have ``.whirr/`` 0755 and
    ``whirr.db``/``-wal``/``-shm`` 0644. A file counts as readable by a class of users
    when it grants them read and ``.whirr/`` lets them in."""
    try:
        dir_mode = stat.S_IMODE(whirr_dir.stat().st_mode)
    except OSError as exc:
        return Check("permissions", False, f"cannot stat {whirr_dir}: {exc.strerror or exc}")
    exposed: list[str] = []
    for name in ("whirr.db", "whirr.db-wal", "whirr.db-shm"):
        try:
            mode = stat.S_IMODE((whirr_dir / name).stat().st_mode)
        except FileNotFoundError:
            continue
        except OSError as exc:
            return Check("permissions", False, f"cannot stat {name}: {exc.strerror or exc}")
        who = [w for w, enter, read in _CLASSES if dir_mode & enter and mode & read]
        if who:
            exposed.append(f"{name} {mode:04o} ({' and '.join(who)})")
    if not exposed:
        return Check("permissions", True, f"{whirr_dir} {dir_mode:04o}: the database is yours only")
    return Check(
        "permissions",
        False,
        f"other users can read the database, which holds every job's command, config and "
        f"environment: {', '.join(exposed)} in {whirr_dir} {dir_mode:04o}. "
        f"Fix: chmod 700 {whirr_dir} && chmod 600 {whirr_dir}/whirr.db*",
    )


def containment_check() -> Check:
    """How a local ``whirr worker`` started here would hold its jobs' processes, and
    whether ``--memory``/``--cpus`` would be enforced (``whirr.containment``)."""
    from whirr.containment import ContainmentError, detect

    try:
        plan = detect()
    except ContainmentError as exc:
        return Check("containment", False, f"{exc} (a worker would refuse to start)")
    return Check("containment", True, plan.describe())


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
