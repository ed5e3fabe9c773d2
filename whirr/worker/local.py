"""The local worker: claims jobs from the project's store and runs them one at a time.

The loop sleeps on one ``threading.Event`` that three things set: a store watcher thread
(any commit to the log: a submit, a cancel request), the job's waiter thread (the child
exited) and the signal handlers. So an idle worker costs nothing, a submit starts within
milliseconds, a cancel lands within one wake-up, and a finished job is reported at once.
"""

from __future__ import annotations

import os
import signal
import socket
import threading
import time
from collections.abc import Callable
from pathlib import Path
from types import FrameType

from whirr.config import Config
from whirr.projections import JobView
from whirr.services import Jobs, LeaseLost, Workers
from whirr.store import EventStore
from whirr.worker.runfiles import fail_run_files, finish_run_files, start_run_files
from whirr.worker.supervisor import JobProcess, Reaper, SpawnError, spawn

#: How often an idle worker checks for expired leases of other (lost) workers.
LEASE_SWEEP_SECONDS = 1.0


class Current:
    """The job a worker is running now."""

    def __init__(self, job: JobView, process: JobProcess, run_dir: Path) -> None:
        self.job = job
        self.process = process
        self.run_dir = run_dir
        self.next_heartbeat = 0.0


class LocalWorker:
    """Runs queued jobs of one project until stopped (or until the queue is empty)."""

    def __init__(
        self,
        store: EventStore,
        runs_dir: Path,
        config: Config,
        *,
        worker_id: str | None = None,
        gpu: int | None = None,
        exit_when_empty: bool = False,
        say: Callable[[str], None] = lambda message: None,
    ) -> None:
        self.store = store
        self.runs_dir = runs_dir
        self.config = config
        self.hostname = socket.gethostname()
        self.worker_id = worker_id or f"{self.hostname}-{os.getpid()}"
        self.gpu = gpu
        self.exit_when_empty = exit_when_empty
        self.say = say
        self.jobs = Jobs(store)
        self.workers = Workers(store)
        self.wake = threading.Event()
        self.stop_requests = 0
        self.current: Current | None = None
        self._watching = True
        self._cursor = 0

    # -- lifecycle -----------------------------------------------------------
    def run(self) -> int:
        """Work until drained or stopped; returns a process exit status."""
        reaper = Reaper()  # forked before any thread starts
        self._install_signal_handlers()
        self._cursor = self.store.head()
        watcher = threading.Thread(target=self._watch_store, name="store-watch", daemon=True)
        watcher.start()
        gpus = [self.gpu] if self.gpu is not None else []
        self.workers.register(self.worker_id, self.hostname, pid=os.getpid(), gpu_ids=gpus)
        self.say(f"Worker {self.worker_id} started (pid {os.getpid()}); waiting for jobs.")
        reason = "stopped"
        try:
            reason = self._loop(reaper)
        finally:
            self._watching = False
            if self.current is not None:  # a second stop request, or an unexpected error
                self.current.process.kill()
            reaper.close()
            # This append also wakes the watcher thread, which then sees _watching is off.
            self.workers.stopped(self.worker_id, reason)
            watcher.join()
        self.say(f"Worker {self.worker_id} {reason}.")
        return 0

    def _install_signal_handlers(self) -> None:
        def on_signal(signum: int, frame: FrameType | None) -> None:
            self.stop_requests += 1
            self.wake.set()

        signal.signal(signal.SIGINT, on_signal)
        signal.signal(signal.SIGTERM, on_signal)

    def _watch_store(self) -> None:
        # A dedicated thread (and so its own SQLite connection) blocks on the log.
        while self._watching:
            if self.store.wait(self._cursor, timeout=0.5):
                self._cursor = self.store.head()
                self.wake.set()

    # -- the loop ------------------------------------------------------------
    def _loop(self, reaper: Reaper) -> str:
        next_sweep = 0.0
        next_seen = time.monotonic() + self.config.heartbeat_interval
        announced_drain = False
        while True:
            self.wake.clear()
            if self.stop_requests >= 2 and self.current is not None:
                self.say("Second stop request: killing the running job.")
                self._stop_current(reaper, kill=True)
                return "stopped (job killed)"
            if self.stop_requests and not announced_drain:
                announced_drain = True
                if self.current is not None:
                    self.say("Draining: finishing the current job (stop again to kill it).")
            if self.current is not None:
                timeout = self._tend(reaper)
                self.wake.wait(timeout)
                continue
            if self.stop_requests:
                return "drained"
            now = time.monotonic()
            if now >= next_sweep:
                for job in self.jobs.requeue_expired():
                    self.say(f"Job #{job.id}: worker lost; now {job.status}.")
                next_sweep = now + LEASE_SWEEP_SECONDS
            if self.store.claimable_jobs(1):
                claimed = self.jobs.claim(self.worker_id, self.config.heartbeat_timeout)
                if claimed is not None:
                    self._start(claimed, reaper)
                    continue
            elif self.exit_when_empty and not self.store.jobs(["running"], limit=1):
                # Nothing queued and nothing running anywhere (a running job of a lost
                # worker may still come back to the queue, so wait for those too).
                return "drained (queue empty)"
            if now >= next_seen:
                self.workers.seen(self.worker_id)
                next_seen = now + self.config.heartbeat_interval
            self.wake.wait(min(LEASE_SWEEP_SECONDS, self.config.poll_interval))

    def _start(self, job: JobView, reaper: Reaper) -> None:
        run_dir = self.runs_dir / job.run_id
        start_run_files(run_dir, job)
        env = self._job_env(job, run_dir)
        try:
            process = spawn(
                job.command_argv,
                job.workdir,
                env,
                str(run_dir / "output.log"),
                on_exit=self.wake.set,
            )
        except SpawnError as exc:
            self.say(f"Job #{job.id} could not start: {exc}")
            self.jobs.finish(
                job.id, self.worker_id, job.attempt, None, error=str(exc), outcome="failed"
            )
            fail_run_files(run_dir, f"could not start: {exc}")
            return
        reaper.watch(process.pgid)
        try:
            job = self.jobs.started(
                job.id,
                self.worker_id,
                job.attempt,
                process.pid,
                run_dir=str(run_dir),
                hostname=self.hostname,
            )
        except LeaseLost:
            process.kill()
            reaper.forget(process.pgid)
            return
        self.current = Current(job, process, run_dir)
        self.current.next_heartbeat = time.monotonic() + self.config.heartbeat_interval
        self.say(f"Job #{job.id} started: {' '.join(job.command_argv)}")

    def _job_env(self, job: JobView, run_dir: Path) -> dict[str, str]:
        env = dict(os.environ)
        env.update(job.env)
        env.update(
            WHIRR_JOB_ID=str(job.id),
            WHIRR_RUN_ID=job.run_id,
            WHIRR_RUN_DIR=str(run_dir),
            PYTHONUNBUFFERED="1",
        )
        if self.gpu is not None:
            env["CUDA_VISIBLE_DEVICES"] = str(self.gpu)
        return env

    def _tend(self, reaper: Reaper) -> float:
        """Look after the running job; returns how long the loop may sleep."""
        current = self.current
        assert current is not None
        process = current.process
        code = process.exit_code
        if code is not None:
            self._report_exit(current, code, reaper)
            return 0.0
        now = time.monotonic()
        job = self.store.job(current.job.id)
        if job is not None and job.cancel_requested and process.term_sent_at is None:
            self.say(f"Job #{job.id}: cancel requested; stopping its process group.")
            process.terminate()
        if now >= current.next_heartbeat:
            try:
                self.jobs.heartbeat(
                    current.job.id,
                    self.worker_id,
                    current.job.attempt,
                    self.config.heartbeat_timeout,
                )
            except LeaseLost as exc:
                self.say(f"Job #{current.job.id}: lease lost ({exc}); killing it.")
                self._stop_current(reaper, kill=True, report=False)
                return 0.0
            current.next_heartbeat = now + self.config.heartbeat_interval
        until_kill = process.escalate(self.config.kill_grace_period)
        waits = [current.next_heartbeat - now]
        if until_kill is not None:
            waits.append(until_kill)
        return max(0.0, min(waits))

    def _report_exit(self, current: Current, code: int, reaper: Reaper) -> None:
        reaper.forget(current.process.pgid)
        self.current = None
        try:
            job = self.jobs.finish(current.job.id, self.worker_id, current.job.attempt, code)
        except LeaseLost as exc:
            self.say(f"Job #{current.job.id} exited {code} but its lease was lost: {exc}")
            return
        finish_run_files(current.run_dir, self.store.run(job.run_id))
        self.say(f"Job #{job.id} {job.status} (exit {code}).")

    def _stop_current(self, reaper: Reaper, *, kill: bool, report: bool = True) -> None:
        current = self.current
        assert current is not None
        current.process.kill() if kill else current.process.terminate()
        code = current.process.wait(timeout=5.0)
        if report and code is not None:
            self._report_exit(current, code, reaper)
        else:
            reaper.forget(current.process.pgid)
            self.current = None
