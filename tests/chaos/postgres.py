"""A private, throwaway PostgreSQL cluster for the chaos suite: the PostgreSQL-restart fault
stops and starts it, which must never happen to the shared test server.

On a free loopback port, trust auth, no fsync; run as the ``postgres`` user when we are
root (PostgreSQL refuses root). Each chaos run gets a schema of its own (``schema_url``).
No pytest here: ``tools/bench/chaos.py`` uses it too.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import tempfile
import uuid
from pathlib import Path
from urllib.parse import urlencode

from server_process import free_port


class ClusterUnavailable(RuntimeError):
    """The machine lacks what a private cluster needs (the message says what)."""


def _pg_bin(name: str) -> str | None:
    found = shutil.which(name)
    if found:
        return found
    versions = sorted(Path("/usr/lib/postgresql").glob(f"*/bin/{name}"))
    return str(versions[-1]) if versions else None


class PrivateCluster:
    """``initdb`` + ``pg_ctl start`` in a temporary directory; ``close`` removes it all."""

    def __init__(self) -> None:
        initdb, pg_ctl = _pg_bin("initdb"), _pg_bin("pg_ctl")
        as_root = os.geteuid() == 0
        missing = []
        if not initdb or not pg_ctl:
            missing.append("the PostgreSQL server binaries (initdb, pg_ctl)")
        if as_root and not shutil.which("runuser"):
            missing.append("runuser")
        owner = None
        if as_root:
            import pwd

            try:
                owner = pwd.getpwnam("postgres")
            except KeyError:
                missing.append("a `postgres` user")
        if missing or not initdb or not pg_ctl:
            raise ClusterUnavailable(f"a private PostgreSQL cluster needs {', '.join(missing)}")
        self._pg_ctl = pg_ctl
        self._prefix = ["runuser", "-u", "postgres", "--"] if as_root else []
        self.root = Path(tempfile.mkdtemp(prefix="whirr-chaos-pg-"))
        if owner is not None:
            os.chown(self.root, owner.pw_uid, owner.pw_gid)
        self.data = self.root / "data"
        self.port = free_port()
        self.url = f"postgresql://postgres@127.0.0.1:{self.port}/postgres"
        self._run(initdb, "-D", str(self.data), "-A", "trust", "-U", "postgres", "-N")
        self.start()

    def _run(self, *cmd: str) -> None:
        done = subprocess.run(
            [*self._prefix, *cmd], capture_output=True, text=True, timeout=120, check=False
        )
        if done.returncode != 0:
            raise RuntimeError(f"{' '.join(cmd)} failed:\n{done.stdout}\n{done.stderr}")

    def start(self) -> None:
        options = (
            f"-p {self.port} -c listen_addresses=127.0.0.1 -k {self.root} "
            # fsync=off loses nothing to a crash of PostgreSQL alone (the OS keeps the
            # pages); synchronous_commit stays on, or a crash would drop acknowledged commits.
            "-c fsync=off -c full_page_writes=off"
        )
        log = str(self.root / "postgres.log")
        self._run(self._pg_ctl, "-D", str(self.data), "-o", options, "-l", log, "-w", "start")

    def stop(self, mode: str = "immediate") -> None:
        """``immediate`` is a crash: no shutdown checkpoint, crash recovery on start."""
        self._run(self._pg_ctl, "-D", str(self.data), "-m", mode, "-w", "stop")

    def schema_url(self) -> str:
        """A fresh schema in the cluster: the store URL that uses it."""
        import psycopg
        from psycopg import sql

        name = f"chaos_{uuid.uuid4().hex[:12]}"
        with psycopg.connect(self.url, autocommit=True) as conn:
            conn.execute(sql.SQL("CREATE SCHEMA {}").format(sql.Identifier(name)))
        return f"{self.url}?{urlencode({'options': f'-csearch_path={name}'})}"

    def close(self) -> None:
        if (self.data / "postmaster.pid").exists():
            with contextlib.suppress(RuntimeError):
                self.stop()
        shutil.rmtree(self.root, ignore_errors=True)
