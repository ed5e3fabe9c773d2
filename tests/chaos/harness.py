"""The chaos harness: a real ``whirr server``, real workers (Python or Rust), jobs that say
when every one of their processes lived (``job.py``), faults, and the check of the whole.

One ``Chaos`` is one trial: a server on its own data dir (SQLite) or its own schema of a
PostgreSQL cluster, a marks file, and a random token that every worker and job carries
in its environment (``CHAOS_MARKER``). A fault function (``FAULTS``) starts workers,
queues jobs and does its damage; ``Chaos.finish`` then waits for every job to end and
checks what issue 17 promises:

- every job completed exactly once: the server recorded one ``completed`` end, and one
  attempt of the job ran to its end (``end 0`` in the marks);
- no two attempts of one job overlap in time (from the marks: an attempt lives from its
  leader's start to the last line any of its processes wrote);
- a fault that must not cost an attempt (a short server stall or restart, a database
  restart) cost none: the job ran once;
- no process is left behind: none carries the token once the workers are stopped (a
  bounded wait, then every one found is reported and killed);
- ``rebuild`` gives the views the live store had: after the server stops, its store's
  jobs, runs, workers and queue views before and after ``rebuild()`` are equal, and the
  jobs agree with what the API said while the server ran.

Each breach is one line in ``Report.problems``; the tests assert there are none and the
bench (``tools/bench/chaos.py``) counts them. No pytest here, so the bench can use it.
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
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pause_proxy import PauseProxy
from server_process import WHIRR, ServerProcess

from whirr.client import WhirrClient

JOB_SCRIPT = Path(__file__).resolve().with_name("job.py")
MARKER_VAR = "CHAOS_MARKER"
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
    def short_stall(self) -> float:
        return self.stall if self.stall is not None else 0.4 * self.lease


@dataclass(frozen=True)
class Mark:
    """One line of the marks file (see ``job.py``)."""

    kind: str
    job: int
    attempt: int
    pid: int
    role: str
    at: float
    code: int | None


@dataclass
class Worker:
    kind: str
    proc: subprocess.Popen[bytes]
    log: Path
    proxy: PauseProxy | None = None

    @property
    def pid(self) -> int:
        return self.proc.pid


@dataclass
class Report:
    """What ``finish`` found. ``problems`` is empty when every promise held."""

    problems: list[str] = field(default_factory=list)
    #: Per job, the longest time two of its attempts were alive together (ms).
    overlap_ms: dict[int, float] = field(default_factory=dict)
    #: Per job, the attempts its leader started (from the marks).
    attempts: dict[int, int] = field(default_factory=dict)
    #: Jobs that ran again though their fault must not cost an attempt.
    restarted: list[int] = field(default_factory=list)
    #: ``pid cmdline`` of every process found carrying the token after the bounded wait.
    leftovers: list[str] = field(default_factory=list)
    #: Per job, the reasons of its ``job.requeued`` events.
    requeue_reasons: dict[int, list[str]] = field(default_factory=dict)
    #: Figures the fault measured (``requeue_s``: loss of a worker to the next attempt).
    figures: dict[str, float] = field(default_factory=dict)
    #: The trial's steps with their times (``Chaos.note``).
    steps: list[str] = field(default_factory=list)


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
        try:
            text = self.marks_path.read_text()
        except FileNotFoundError:
            return []
        found = []
        for line in text.splitlines():
            parts = line.split()
            if len(parts) < 6 or not parts[1].isdigit():
                continue
            code = int(parts[6]) if len(parts) > 6 else None
            found.append(
                Mark(
                    parts[0],
                    int(parts[1]),
                    int(parts[2]),
                    int(parts[3]),
                    parts[4],
                    float(parts[5]),
                    code,
                )
            )
        return found

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
        restarting: an unreachable server is asked again)."""
        deadline = time.monotonic() + timeout
        status: dict[int, str] = {}
        while True:
            with contextlib.suppress(Exception), self.client() as client:
                for job in jobs:
                    if status.get(job) not in ENDED:
                        status[job] = client.get_job(job).status
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
        server, and check everything (see the module's docstring)."""
        report = Report(figures=dict(self.figures), steps=self.notes)
        status = self.wait_ended(self.jobs, timeout)
        self.note(f"jobs ended: {status}")
        for job in self.jobs:
            if status.get(job) != "completed":
                report.problems.append(f"job {job} is {status.get(job, 'unknown')}, not completed")
        api_jobs = self._api_jobs()
        self._stop_workers(report)
        self._find_leftovers(report)
        self.server.stop()
        self.note("server stopped")
        self._check_store(report, api_jobs)
        self._check_marks(report)
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
                report.problems.append(f"worker {n} did not stop within 20 s of SIGTERM")
        self.note("workers stopped")

    def _find_leftovers(self, report: Report) -> None:
        """Processes carrying the token: give them the kill grace and a little more to go,
        then report and SIGKILL whatever is left."""
        wait = (self.settings.grace or 10.0) + 5.0
        deadline = time.monotonic() + wait
        found = processes_with(self.token)
        while found and time.monotonic() < deadline:
            time.sleep(0.1)
            found = processes_with(self.token)
        for pid, cmdline in found.items():
            report.leftovers.append(f"{pid} {cmdline}")
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        if found:
            report.problems.append(
                f"{len(found)} process(es) left behind {wait:g}s after the workers stopped: "
                + "; ".join(report.leftovers)
            )

    def _check_store(self, report: Report, api_jobs: dict[int, tuple[str, int]]) -> None:
        from whirr.events.jobs import JobFinished, JobRequeued
        from whirr.store import open_store

        store = open_store(self.store_url)
        try:
            before = views(store)
            finished: dict[int, list[str]] = {}
            for rec in store.read(types=["job.finished", "job.requeued"]):
                ev = rec.event
                if isinstance(ev, JobFinished):
                    finished.setdefault(ev.job_id, []).append(ev.outcome)
                elif isinstance(ev, JobRequeued):
                    report.requeue_reasons.setdefault(ev.job_id, []).append(ev.reason)
            store.rebuild()
            after = views(store)
        finally:
            store.close()
        for job in self.jobs:
            outcomes = finished.get(job, [])
            if outcomes.count("completed") != 1:
                report.problems.append(f"job {job}: the server recorded ends {outcomes}")
        for name in before:
            if before[name] != after[name]:
                report.problems.append(
                    f"rebuild changed the {name} view: {diff(before[name], after[name])}"
                )
        rebuilt = {j.id: (j.status, j.attempt) for j in after["jobs"]}
        if api_jobs != rebuilt:
            report.problems.append(f"the API said {api_jobs}, the rebuilt views say {rebuilt}")

    def _check_marks(self, report: Report) -> None:
        marks = self.marks()
        for job in self.jobs:
            mine = [m for m in marks if m.job == job]
            starts = {m.attempt: m.at for m in mine if m.kind == "start" and m.role == "leader"}
            last: dict[int, float] = {}
            for m in mine:
                last[m.attempt] = max(last.get(m.attempt, m.at), m.at)
            report.attempts[job] = len(starts)
            done = sorted(
                m.attempt for m in mine if (m.kind, m.role, m.code) == ("end", "leader", 0)
            )
            if len(done) != 1:
                report.problems.append(f"job {job}: attempts {done} ran to their end (one must)")
            worst = 0.0
            order = sorted(starts)
            for i, a in enumerate(order):
                for b in order[i + 1 :]:
                    both = min(last[a], last[b]) - max(starts[a], starts[b])
                    if both > 0:
                        worst = max(worst, both)
                        report.problems.append(
                            f"job {job}: attempts {a} and {b} overlap by {both * 1000:.0f} ms "
                            f"(alive +{self.since(starts[a])}..+{self.since(last[a])} and "
                            f"+{self.since(starts[b])}..+{self.since(last[b])})"
                        )
            report.overlap_ms[job] = worst * 1000
            if job in self.single_attempt and len(starts) > 1:
                report.restarted.append(job)
                reasons = report.requeue_reasons.get(job, [])
                report.problems.append(
                    f"job {job} ran {len(starts)} times though its fault must cost no attempt "
                    f"(requeued: {reasons})"
                )

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


def processes_with(token: str) -> dict[int, str]:
    """pid -> command line of every live process whose environment carries the token."""
    needle = f"{MARKER_VAR}={token}".encode()
    found: dict[int, str] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/environ", "rb") as fh:
                if needle not in fh.read().split(b"\0"):
                    continue
            with open(f"/proc/{entry}/cmdline", "rb") as fh:
                cmdline = fh.read().replace(b"\0", b" ").decode(errors="replace").strip()
        except OSError:  # gone meanwhile, or a kernel thread
            continue
        found[int(entry)] = cmdline
    return found


def views(store: Any) -> dict[str, Any]:
    """Everything a rebuild derives, in a comparable form."""
    return {
        "jobs": sorted(store.jobs(), key=lambda j: j.id),
        "runs": sorted(store.runs(), key=lambda r: r.id),
        "workers": sorted(store.workers(), key=lambda w: w.id),
        "queue": store.queue_state(),
    }


def diff(before: Any, after: Any) -> str:
    """A short account of what differs between two views (lists compared item by item)."""
    if isinstance(before, list) and isinstance(after, list):
        changed = [f"{b!r} -> {a!r}" for b, a in zip(before, after, strict=False) if b != a]
        if len(before) != len(after):
            changed.append(f"{len(before)} items -> {len(after)}")
        return "; ".join(changed[:3])
    return f"{before!r} -> {after!r}"


# -- the faults -------------------------------------------------------------------------
#: A fault: sets a trial up and does its damage; ``finish`` checks the rest.
Fault = Callable[[Chaos], None]


def _busy_worker(chaos: Chaos, first: float, then: float, **options: Any) -> tuple[Worker, int]:
    """A worker running attempt 1 of a fresh job (``options`` for ``start_worker``)."""
    job = chaos.submit(first, then)
    worker = chaos.start_worker(**options)
    chaos.wait_started(job, 1, timeout=30)
    return worker, job


def _lose_worker(chaos: Chaos, how: str) -> None:
    """A worker dies mid-job at a random point; a healthy one is there to take over."""
    lease = chaos.settings.lease
    victim, job = _busy_worker(chaos, 3 * lease, 1.0, own_session=how != "kill9")
    chaos.start_worker()
    chaos.submit(1.0, 1.0)
    time.sleep(chaos.rng.uniform(0.0, 3.0))
    if how == "kill9":
        lost = chaos.signal_worker(victim, signal.SIGKILL, group=False)
    elif how == "group_kill":
        lost = chaos.signal_worker(victim, signal.SIGKILL, group=True)
    else:
        lost = chaos.signal_worker(victim, signal.SIGHUP, group=True)
    # A worker that outlives SIGHUP may keep the job (fine): no second attempt then.
    if how != "sighup" or _exits(victim, 5.0):
        start = chaos.wait_started(job, 2, timeout=lease + 30)
        chaos.figures["requeue_s"] = start - lost


def _exits(worker: Worker, timeout: float) -> bool:
    try:
        worker.proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        return False
    return True


def worker_kill9(chaos: Chaos) -> None:
    """``kill -9`` of the worker while it runs a job."""
    _lose_worker(chaos, "kill9")


def worker_group_kill(chaos: Chaos) -> None:
    """SIGKILL to the worker's whole process group (the worker started under ``setsid``)."""
    _lose_worker(chaos, "group_kill")


def worker_sighup(chaos: Chaos) -> None:
    """SIGHUP to the worker's process group: what a dropped SSH session does."""
    _lose_worker(chaos, "sighup")


def worker_partition(chaos: Chaos) -> None:
    """The worker's link to the server is cut (a paused TCP proxy) for longer than the
    lease; a healthy worker gets the job's next attempt; the link heals only once that
    attempt has finished, so a copy the cut-off worker kept running shows as overlap."""
    lease = chaos.settings.lease
    victim, job = _busy_worker(chaos, 3 * lease, 2.0, via_proxy=True)
    time.sleep(chaos.rng.uniform(0.0, chaos.settings.heartbeat or lease / 3))
    assert victim.proxy is not None
    victim.proxy.pause()
    lost = time.monotonic()
    chaos.note("the worker's link is cut (proxy paused)")
    chaos.start_worker()
    start = chaos.wait_started(job, 2, timeout=lease + 30)
    chaos.figures["requeue_s"] = start - lost
    chaos.wait_ended([job], timeout=30)
    victim.proxy.resume()
    chaos.note("the link healed (proxy resumed)")


def server_stall(chaos: Chaos) -> None:
    """SIGSTOP of the server for ``Settings.short_stall`` (well under lease - margin -
    heartbeat), then SIGCONT: no job may lose its attempt."""
    stall = chaos.settings.short_stall
    _busy_worker(chaos, stall + 4.0, 1.0)
    chaos.single_attempt.update(chaos.jobs)
    chaos.single_attempt.add(chaos.submit(1.0, 1.0))
    time.sleep(chaos.rng.uniform(0.0, chaos.settings.heartbeat or 1.0))
    chaos.stall_server(stall)


def server_long_stall(chaos: Chaos) -> None:
    """SIGSTOP of the server for longer than the lease: the job is fenced and requeued
    once, and its next attempt never overlaps the first (bench only: it takes a lease)."""
    lease = chaos.settings.lease
    _busy_worker(chaos, 3 * lease, 1.0)
    chaos.stall_server(lease + 3.0)


def server_restart(chaos: Chaos) -> None:
    """``kill -9`` of the server and a restart on the same port shortly after: no job
    may lose its attempt."""
    _busy_worker(chaos, 8.0, 1.0)
    chaos.single_attempt.update(chaos.jobs)
    chaos.single_attempt.add(chaos.submit(1.0, 1.0))
    time.sleep(chaos.rng.uniform(0.0, chaos.settings.heartbeat or 1.0))
    chaos.restart_server(chaos.rng.uniform(0.5, 2.0))


def postgres_restart(chaos: Chaos, cluster: Any) -> None:
    """A crash of the server's PostgreSQL (``pg_ctl stop -m immediate``) and its start a
    moment later: no job may lose its attempt."""
    _busy_worker(chaos, 8.0, 1.0)
    chaos.single_attempt.update(chaos.jobs)
    chaos.single_attempt.add(chaos.submit(1.0, 1.0))
    time.sleep(chaos.rng.uniform(0.0, chaos.settings.heartbeat or 1.0))
    cluster.stop("immediate")
    down = chaos.rng.uniform(1.0, 3.0)
    chaos.note(f"PostgreSQL crashed (stop -m immediate), down for {down:.2f}s")
    time.sleep(down)
    cluster.start()
    chaos.note("PostgreSQL started")


FAULTS: dict[str, Fault] = {
    "worker_kill9": worker_kill9,
    "worker_group_kill": worker_group_kill,
    "worker_sighup": worker_sighup,
    "worker_partition": worker_partition,
    "server_stall": server_stall,
    "server_restart": server_restart,
}
#: Faults that take a trial longer than CI's budget allows; the bench runs them.
BENCH_FAULTS: dict[str, Fault] = {"server_long_stall": server_long_stall}
