"""Workers on machines of their own, for the shipping tests (issue 16).

Each worker gets a data dir that is *not* the server's (no shared filesystem): what a job
writes there reaches the server only through the HTTP API. Helpers here start the Python
and the Rust worker on such a dir, read the worker's copy of a run's files, and read the
server's copy through its routes only (never its disk), so a test compares the two.
"""

from __future__ import annotations

import hashlib
import json
import subprocess
from pathlib import Path
from typing import Any

import httpx
from server_process import ServerProcess, stop_process
from worker_processes import WorkerProcs, worker_command

#: The append streams a worker ships by byte offset.
STREAMS = ("output.log", "metrics.jsonl", "system.jsonl")


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def file_sha(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


class Workers:
    """Worker processes started by a test; ``close`` kills the ones still running."""

    def __init__(self, server: ServerProcess) -> None:
        self.server = server
        self.procs = WorkerProcs()

    def start(
        self,
        kind: str,
        data_dir: Path,
        *,
        url: str | None = None,
        lease: float = 30,
        worker_id: str | None = None,
    ) -> subprocess.Popen[bytes]:
        url = url or self.server.url
        data_dir.mkdir(parents=True, exist_ok=True)
        env = {**self.server.env, "WHIRR_SERVER_URL": url}
        return self.procs.spawn(
            worker_command(kind, url, data_dir, lease=lease, worker_id=worker_id),
            env,
            self.server.logs_dir / f"{kind}-worker.log",
        )

    def stop_all(self) -> None:
        """SIGTERM every worker still running (SIGKILL past 10 s) and wait for it."""
        for proc in self.procs.procs:
            stop_process(proc)

    def output(self) -> str:
        logs = sorted(self.server.logs_dir.glob("*-worker.log"))
        return "\n".join(f"--- {p.name}\n{p.read_text(errors='replace')}" for p in logs)

    def close(self) -> None:
        self.procs.kill_all()


class ServerCopy:
    """A run's files as the server has them, read through the API."""

    def __init__(self, server: ServerProcess) -> None:
        self.server = server
        self.http = httpx.Client(
            base_url=f"{server.url}/api/v1", headers=server.headers(), timeout=60
        )

    def close(self) -> None:
        self.http.close()

    def files(self, run_id: str) -> dict[str, Any]:
        """``GET /runs/{id}/files``: the mode and each file's state."""
        resp = self.http.get(f"/runs/{run_id}/files")
        assert resp.status_code == 200, (resp.status_code, resp.text)
        body: dict[str, Any] = resp.json()
        return body

    def state(self, run_id: str, name: str) -> str | None:
        entry = self.files(run_id)["files"].get(name)
        return None if entry is None else str(entry["state"])

    def size(self, run_id: str, name: str) -> int:
        """The server's size of ``name``; 0 before the run exists there (its worker has
        not reported the start yet: a 404 naming the run, nothing else)."""
        resp = self.http.get(f"/runs/{run_id}/files")
        if resp.status_code == 404 and f"no run '{run_id}'" in resp.text:
            return 0
        assert resp.status_code == 200, (resp.status_code, resp.text)
        entry = resp.json()["files"].get(name)
        return 0 if entry is None else int(entry["size"])

    def log(self, job_id: int) -> bytes:
        resp = self.http.get(f"/jobs/{job_id}/logs")
        assert resp.status_code == 200, (resp.status_code, resp.text)
        return resp.content

    def raw(self, run_id: str, name: str) -> bytes:
        """``metrics.jsonl``/``system.jsonl`` through ``/runs/{id}/raw``, page by page."""
        out = bytearray()
        file = name.removesuffix(".jsonl")  # the route names them metrics and system
        for _ in range(100_000):
            resp = self.http.get(f"/runs/{run_id}/raw/{file}", params={"offset": len(out)})
            assert resp.status_code == 200, (resp.status_code, resp.text)
            out += resp.content
            if not resp.content or len(out) >= int(resp.headers["X-Whirr-Size"]):
                return bytes(out)
        raise AssertionError("the raw pages never ended")

    def stream(self, run_id: str, job_id: int, name: str) -> bytes:
        """One append stream's bytes on the server."""
        return self.log(job_id) if name == "output.log" else self.raw(run_id, name)


def hide(data_dir: Path) -> Path:
    """Move a worker's data dir away (its workers stopped): everything on one machine in
    a test, the server could otherwise read a run's files at the path the worker
    reported. Returns where the files now are, for the test to compare with."""
    gone = data_dir.with_name(data_dir.name + "-moved")
    data_dir.rename(gone)
    return gone


def json_lines(data: bytes) -> list[dict[str, Any]]:
    return [json.loads(line) for line in data.splitlines() if line.strip()]
