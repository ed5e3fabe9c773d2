"""The chaos harness: one trial of the chaos suite (issue 17) with real processes.

A ``Chaos`` is a real ``whirr server`` on its own data dir (SQLite) or its own schema of a
PostgreSQL cluster, real workers (Python or Rust) on it, jobs that say when every one of
their processes lived (``job.py``, into a marks file), and a random token every worker
and job carries in its environment (``CHAOS_MARKER``). A fault (``faults.py``) starts
workers, queues jobs and does its damage with the primitives here (signals, a stalled or
restarted server, a paused proxy); ``Chaos.finish`` then waits for every job to end,
stops everything, and runs the checks of ``checks.py``.

No pytest here, so ``tools/bench/chaos.py`` runs the same trials.
"""

from __future__ import annotations

import contextlib
import os
import random
import signal
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

from pause_proxy import PauseProxy
from server_process import WHIRR, ServerProcess

from chaos.checks import (
    MARKER_VAR,
    Mark,
    Report,
    check_marks,
    check_store,
    find_leftovers,
    processes_with,
    read_marks,
)
from whirr.client import WhirrClient

JOB_SCRIPT = Path(__file__).resolve().with_name("job.py")
ENDED = ("completed", "failed", "cancelled", "timed_out")


@dataclass(frozen=True)
class Settings:
    """Lease, heartbeat and kill grace the workers get (None: the worker's default)."""

    lease: float = 15.0
    heartbeat: float | None = 2.0
    grace: float | None = 1.0
    #: A server stall this long must cost no attempt: well under lease - margin - heartbeat.
    stall: float | None = None

    @property
    def beat(self) -> float:
        """Seconds between two heartbeats (the workers' default: a third of the lease)."""
        return self.heartbeat if self.heartbeat is not None else self.lease / 3

    @property
    def short_stall(self) -> float:
        return self.stall if self.stall is not None else 0.4 * self.lease


@dataclass
class Worker:
    kind: str
    proc: subprocess.Popen[bytes]
    log: Path
    proxy: PauseProxy | None = None

    @property
    def pid(self) -> int:
        return self.proc.pid


class Chaos:
    """One trial; ``close`` (or the context manager) releases everything it started."""

    def __init__(
        self,
        root: Path,
        worker_kind: str,
        *,
        settings: Settings | None = None,
        database_url: str | None = None,
        rust_binary: Path | None = None,
        seed: int | None = None,
    ) -> None:
        self.root = root
        self.kind = worker_kind
        self.settings = settings or Settings()
        self.seed = seed if seed is not None else random.SystemRandom().randrange(2**32)
        self.rng = random.Random(self.seed)
        self.token = uuid.uuid4().hex
        self.rust_binary = rust_binary
        self.database_url = database_url
        self.marks_path = root / "marks.log"
        self.workdir = root / "wd"
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.t0 = time.monotonic()
        self.notes: list[str] = []
        self.jobs: list[int] = []
        self.single_attempt: set[int] = set()
        self.figures: dict[str, float] = {}
        self.workers: list[Worker] = []
        self._proxies: list[PauseProxy] = []
        self.server = self._start_server()
        self.store_url = database_url or f"sqlite://{(self.server.data_dir / 'whirr.db')}"
        self.note(f"seed {self.seed}, {worker_kind} workers, {self.backend}")

    # -- the parts ---------------------------------------------------------------------
    @property
    def backend(self) -> str:
        return "postgres" if self.database_url else "sqlite"

    def _start_server(self, port: int | None = None) -> ServerProcess:
        return ServerProcess(self.root / "srv", database_url=self.database_url, port=port)

    def note(self, what: str) -> None:
        """Log a step of the trial (with its time since the start) for failure messages."""
        self.notes.append(f"+{time.monotonic() - self.t0:6.2f}s {what}")

    def since(self, at: float) -> str:
        """A monotonic time as seconds since the trial began (as the steps show it)."""
        return f"{at - self.t0:.2f}s"

    def client(self) -> WhirrClient:
        return WhirrClient(self.server.url, token=self.server.token, timeout=10)

    def worker_command(self, url: str) -> list[str]:
        s = self.settings
        if self.kind == "python":
            cmd = [*WHIRR, "worker", "--server", url, "--data-dir", str(self.server.data_dir)]
            cmd += ["--lease-seconds", f"{s.lease:g}"]
            if s.heartbeat is not None:
                cmd += ["--heartbeat-interval", f"{s.heartbeat:g}"]
            if s.grace is not None:
                cmd += ["--kill-grace-period", f"{s.grace:g}"]
            return cmd
        if self.rust_binary is None:
            raise ValueError("a Rust trial needs the whirr-worker binary")
        cmd = [str(self.rust_binary), "-s", url, "-d", str(self.server.data_dir)]
        cmd += ["--poll-interval", "0.5", "--lease-seconds", f"{s.lease:g}"]
        if s.heartbeat is not None:
            cmd += ["--heartbeat-interval", f"{s.heartbeat:g}"]
        if s.grace is not None:
            cmd += ["--kill-grace", f"{s.grace:g}"]
        return cmd

    def start_worker(self, *, via_proxy: bool = False, own_session: bool = False) -> Worker:
        """A worker on the server (through a ``PauseProxy`` of its own with ``via_proxy``;
        leading a process group of its own with ``own_session``, as ``setsid`` does)."""
        proxy = None
        url = self.server.url
        if via_proxy:
            proxy = PauseProxy(self.server.port)
            self._proxies.append(proxy)
            url = proxy.url
        env = {**self.server.env, "WHIRR_SERVER_URL": url, MARKER_VAR: self.token}
        log = self.server.logs_dir / f"{self.kind}-worker-{len(self.workers)}.log"
        with open(log, "wb") as out:
            proc = subprocess.Popen(
                self.worker_command(url),
                env=env,
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=own_session,
            )
        worker = Worker(self.kind, proc, log, proxy)
        self.workers.append(worker)
        self.note(f"worker {len(self.workers) - 1} started (pid {proc.pid})")
        return worker

    def submit(self, first: float, then: float, *, once: bool = False) -> int:
        """Queue a job whose attempt 1 runs ``first`` seconds and later ones ``then``;
        ``once``: the trial's fault must not cost it an attempt."""
        argv = [sys.executable, str(JOB_SCRIPT), str(self.marks_path), f"{first:g}", f"{then:g}"]
        with self.client() as client:
            job_id = client.submit(
                argv, str(self.workdir), env={MARKER_VAR: self.token}, max_attempts=4
            ).job_id
        self.jobs.append(job_id)
        if once:
            self.single_attempt.add(job_id)
        self.note(f"job {job_id} queued ({first:g}s, then {then:g}s)")
        return job_id

    # -- what happened -----------------------------------------------------------------
    def marks(self) -> list[Mark]:
        return read_marks(self.marks_path)

    def started_at(self, job: int, attempt: int) -> float | None:
        for m in self.marks():
            if (m.kind, m.job, m.attempt, m.role) == ("start", job, attempt, "leader"):
                return m.at
        return None

    def wait_started(self, job: int, attempt: int, timeout: float) -> float:
        """When attempt ``attempt`` of ``job`` started (waits for it, bounded)."""
        deadline = time.monotonic() + timeout
        while True:
            at = self.started_at(job, attempt)
            if at is not None:
                self.note(f"job {job} attempt {attempt} started")
                return at
            if time.monotonic() >= deadline:
                raise AssertionError(
                    f"job {job} attempt {attempt} did not start within {timeout:g}s\n"
                    + self.context()
                )
            time.sleep(0.05)

    def wait_ended(self, jobs: list[int], timeout: float) -> dict[int, str]:
        """Each job's status once all ended or ``timeout`` passed (the server may be
        restarting: an unreachable server is asked again; the last error is the status
        of a job never seen)."""
        deadline = time.monotonic() + timeout
        status: dict[int, str] = {}
        while True:
            with self.client() as client:
                for job in jobs:
                    if status.get(job) in ENDED:
                        continue
                    try:
                        status[job] = client.get_job(job).status
                    except Exception as exc:  # any failure: ask again, say it if it stays
                        if job not in status or status[job].startswith("unknown"):
                            status[job] = f"unknown ({type(exc).__name__}: {exc})"
            if all(status.get(j) in ENDED for j in jobs) or time.monotonic() >= deadline:
                return status
            time.sleep(0.1)

    def context(self) -> str:
        """The trial's steps and the tails of the logs, for a failure message."""
        parts = ["--- steps ---", *self.notes]
        logs = [*sorted(self.server.logs_dir.glob("*.log"))]
        for log in logs:
            lines = log.read_text(errors="replace").splitlines()[-12:]
            parts += [f"--- {log.name} (tail) ---", *lines]
        return "\n".join(parts)

    # -- faults ------------------------------------------------------------------------
    def signal_worker(self, worker: Worker, sig: signal.Signals, *, group: bool) -> float:
        """Send ``sig`` to the worker (to its whole process group with ``group``)."""
        at = time.monotonic()
        if group:
            os.killpg(worker.pid, sig)
        else:
            os.kill(worker.pid, sig)
        self.note(f"{sig.name} to worker pid {worker.pid}{' and its group' if group else ''}")
        return at

    def stall_server(self, seconds: float) -> None:
        """SIGSTOP the server for ``seconds``, then SIGCONT."""
        self.server.proc.send_signal(signal.SIGSTOP)
        self.note(f"server stopped (SIGSTOP) for {seconds:.2f}s")
        try:
            time.sleep(seconds)
        finally:
            self.server.proc.send_signal(signal.SIGCONT)
            self.note("server continued (SIGCONT)")

    def restart_server(self, downtime: float) -> None:
        """SIGKILL the server, wait ``downtime``, start it again on the same port."""
        port = self.server.port
        self.server.proc.kill()
        self.server.proc.wait(timeout=10)
        self.note(f"server killed (SIGKILL), down for {downtime:.2f}s")
        time.sleep(downtime)
        self.server = self._start_server(port)
        self.note("server restarted")

    # -- the check ---------------------------------------------------------------------
    def finish(self, timeout: float) -> Report:
        """Wait (at most ``timeout``) for every job to end, stop the workers and the
        server, and check everything (``checks.py``)."""
        report = Report(figures=dict(self.figures), steps=self.notes)
        status = self.wait_ended(self.jobs, timeout)
        self.note(f"jobs ended: {status}")
        for job in self.jobs:
            if status.get(job) != "completed":
                report.add("not completed", f"job {job} is {status.get(job)}, not completed")
        api_jobs = self._api_jobs()
        self._stop_workers(report)
        # The kill grace and a little more for the last processes to go.
        find_leftovers(report, self.token, wait=(self.settings.grace or 10.0) + 5.0)
        self.server.stop()
        self.note("server stopped")
        check_store(report, self.store_url, self.jobs, api_jobs)
        check_marks(report, self.marks(), self.jobs, self.single_attempt, self.since)
        return report

    def _api_jobs(self) -> dict[int, tuple[str, int]]:
        with contextlib.suppress(Exception), self.client() as client:
            return {j.id: (j.status, j.attempt) for j in client.list_jobs(limit=1000)}
        return {}

    def _stop_workers(self, report: Report) -> None:
        for n, worker in enumerate(self.workers):
            if worker.proxy is not None:
                worker.proxy.resume()
            if worker.proc.poll() is not None:
                continue
            worker.proc.send_signal(signal.SIGTERM)
            try:
                worker.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                worker.proc.kill()
                worker.proc.wait()
                report.add("worker hung", f"worker {n} did not stop within 20 s of SIGTERM")
        self.note("workers stopped")

    def close(self) -> None:
        """Stop whatever is still running (workers, leftovers, proxies, the server)."""
        for worker in self.workers:
            if worker.proc.poll() is None:
                worker.proc.kill()
                worker.proc.wait()
        for pid in processes_with(self.token):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        for proxy in self._proxies:
            proxy.close()
        with contextlib.suppress(Exception):
            self.server.proc.send_signal(signal.SIGCONT)  # a stall interrupted by a failure
        self.server.stop()

    def __enter__(self) -> Chaos:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
