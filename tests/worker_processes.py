"""Python and Rust worker processes for end-to-end tests: one command line for either kind
(the options the tests vary), and the processes a test started, killed when it ends."""

from __future__ import annotations

import subprocess
from pathlib import Path

from server_process import WHIRR, ServerProcess, rust_worker_binary


def worker_command(
    kind: str,
    url: str,
    data_dir: Path,
    *,
    lease: object,
    grace: object = 1,
    heartbeat: str | None = "0.5",
    worker_id: str | None = None,
    binary: Path | None = None,
) -> list[str]:
    """A ``kind`` (python/rust) worker on ``url`` writing run files to ``data_dir``: lease
    and kill grace as given (written with ``str``), heartbeats every ``heartbeat`` seconds
    (None: the worker's default), the Rust worker polling every 0.5 s."""
    beats = ["--heartbeat-interval", heartbeat] if heartbeat is not None else []
    if kind == "python":
        cmd = [
            *WHIRR,
            "worker",
            "--server",
            url,
            "--data-dir",
            str(data_dir),
            "--lease-seconds",
            str(lease),
            *beats,
            "--kill-grace-period",
            str(grace),
        ]
        return cmd + (["--id", worker_id] if worker_id else [])
    cmd = [
        str(binary or rust_worker_binary()),
        "-s",
        url,
        "-d",
        str(data_dir),
        "--poll-interval",
        "0.5",
        *beats,
        "--lease-seconds",
        str(lease),
        "--kill-grace",
        str(grace),
    ]
    return cmd + (["--worker-id", worker_id] if worker_id else [])


def spawn_rust_worker(
    server: ServerProcess, env: dict[str, str], log: Path, *, new_session: bool = False
) -> subprocess.Popen[bytes]:
    """The Rust worker on ``server``'s own data dir (lease 30 s, kill grace 1 s), with the
    server's environment plus ``env``: its stderr appended to ``log``, stdout dropped; in a
    session of its own with ``new_session`` (so a test can signal its whole group)."""
    command = worker_command("rust", server.url, server.data_dir, lease=30, grace=1)
    with log.open("ab") as out:
        return subprocess.Popen(
            command,
            env={**server.env, **env},
            stdout=subprocess.DEVNULL,
            stderr=out,
            stdin=subprocess.DEVNULL,
            start_new_session=new_session,
        )


class WorkerProcs:
    """The worker processes a test started; ``kill_all`` kills the ones still running."""

    def __init__(self) -> None:
        self.procs: list[subprocess.Popen[bytes]] = []

    def spawn(self, command: list[str], env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
        """Start ``command`` with its output appended to ``log`` and no stdin."""
        with open(log, "ab") as out:
            proc = subprocess.Popen(
                command, env=env, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL
            )
        self.procs.append(proc)
        return proc

    def kill_all(self) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                proc.kill()
            proc.wait()
