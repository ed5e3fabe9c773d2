"""The local worker: claims jobs from the project's store and runs them, several at once
when it offers several GPUs or CPU slots.

The loop sleeps on one ``threading.Event`` that three things set: a store watcher thread
(any commit to the log: a submit, a cancel request, a drain request), each job's waiter
thread (the child exited) and the signal handlers. So an idle worker costs nothing, a
submit starts within milliseconds, a cancel lands within one wake-up, and a finished job
is reported at once. Timed duties (heartbeats, grace-period kills, timeouts, stuck-run
checks) set the sleep's timeout instead of a polling interval.

Which job runs where is not decided here: ``Jobs.claim`` applies the claim policy of
``whirr.projections.queue`` (the same for remote workers), and hands back the GPU set.
The worker only uses that pure function read-only, to skip a claim transaction when
nothing it could take is queued.
"""

from __future__ import annotations

import os
import signal
import socket
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from types import FrameType

from whirr.clock import utc_now
from whirr.config import Config
from whirr.projections import JobView
from whirr.projections.jobs import Running
from whirr.projections.queue import Capacity, fits, free_capacity, pick
from whirr.services import Jobs, LeaseLost, Workers
from whirr.services.jobs import CLAIM_WINDOW
from whirr.store import EventStore
from whirr.worker.attempt import Attempt
from whirr.worker.notify import Notifier, event_for
from whirr.worker.runfiles import fail_run_files, finish_run_files, start_run_files
from whirr.worker.supervisor import Reaper, SpawnError, spawn

#: How often an idle worker checks for expired leases of other (lost) workers.
LEASE_SWEEP_SECONDS = 1.0


class LocalWorker:
    """Runs queued jobs of one project until stopped, drained, or the queue is empty."""

    def __init__(
        self,
        store: EventStore,
        runs_dir: Path,
        config: Config,
        *,
        worker_id: str | None = None,
        gpu: int | None = None,
        gpus: Sequence[int] | None = None,
        slots: int = 1,
        exit_when_empty: bool = False,
        say: Callable[[str], None] = lambda message: None,
    ) -> None:
        self.store = store
        self.runs_dir = runs_dir
        self.config = config
        self.hostname = socket.gethostname()
        self.worker_id = worker_id or f"{self.hostname}-{os.getpid()}"
        gpu_ids = list(gpus or []) + ([gpu] if gpu is not None and gpu not in (gpus or []) else [])
        self.capacity = Capacity(tuple(gpu_ids), slots)
        self.exit_when_empty = exit_when_empty
        self.say = say
        self.jobs = Jobs(store, reserve_after=config.reserve_after)
        self.workers = Workers(store)
        self.notifier = Notifier(config.notify, say)
        self.wake = threading.Event()
        self.stop_requests = 0
        self.running: dict[int, Attempt] = {}
        self._watching = True
        self._cursor = 0
        self._last_claim_found = False

    # -- lifecycle -----------------------------------------------------------
    def run(self) -> int:
        """Work until drained or stopped; returns a process exit status."""
        reaper = Reaper()  # forked before any thread starts
        self._install_signal_handlers()
        self._cursor = self.store.head()
        watcher = threading.Thread(target=self._watch_store, name="store-watch", daemon=True)
        watcher.start()
        self.workers.register(
            self.worker_id,
            self.hostname,
            pid=os.getpid(),
            gpu_ids=self.capacity.gpu_ids,
            slots=self.capacity.slots,
        )
        offer = (
            f"GPUs {','.join(map(str, self.capacity.gpu_ids))}, " if self.capacity.gpu_ids else ""
        )
        self.say(
            f"Worker {self.worker_id} started (pid {os.getpid()}; {offer}"
            f"{self.capacity.slots} CPU slot(s)); waiting for jobs."
        )
        reason = "stopped"
        try:
            reason = self._loop(reaper)
        finally:
            self._watching = False
            for attempt in self.running.values():  # a second stop request, or an error
                attempt.process.kill()
            reaper.close()
            # This append also wakes the watcher thread, which then sees _watching is off.
            self.workers.stopped(self.worker_id, reason)
            watcher.join()
            self.notifier.close()
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
            if self.stop_requests >= 2 and self.running:
                self.say("Second stop request: killing the running job(s).")
                for attempt in list(self.running.values()):
                    self._stop(attempt, reaper, kill=True)
                return "stopped (jobs killed)"
            draining = bool(self.stop_requests) or self._drain_requested()
            if draining and not announced_drain:
                announced_drain = True
                if self.running:
                    self.say("Draining: finishing the running job(s) (stop again to kill).")
            sleep = min(LEASE_SWEEP_SECONDS, self.config.poll_interval)
            for attempt in list(self.running.values()):
                sleep = min(sleep, self._tend(attempt, reaper))
            if draining:
                if not self.running:
                    return "drained"
                self.wake.wait(sleep)
                continue
            now = time.monotonic()
            if now >= next_sweep:
                for job in self.jobs.requeue_expired():
                    self.say(f"Job #{job.id}: worker lost; now {job.status}.")
                next_sweep = now + LEASE_SWEEP_SECONDS
            if self._claim_what_fits(reaper):
                continue  # look again at once: a started job may already have ended
            if not self.running:
                if self.exit_when_empty and self._nothing_left():
                    return "drained (queue empty)"
                if now >= next_seen:
                    self.workers.seen(self.worker_id)
                    next_seen = now + self.config.heartbeat_interval
            self.wake.wait(sleep)

    def _drain_requested(self) -> bool:
        view = self.store.worker(self.worker_id)
        return view is not None and view.draining

    def _free(self) -> Capacity:
        return free_capacity(self.capacity, (a.job for a in self.running.values()))

    def _claim_what_fits(self, reaper: Reaper) -> bool:
        """Claim and start jobs while some fit what is free; True if any started."""
        started = False
        while True:
            free = self._free()
            if not free.gpu_ids and free.slots <= 0:
                return started
            # While claims keep finding jobs the queue is busy: claim straight away. The
            # read-only look first only pays off when the queue may be empty or full of
            # jobs that do not fit, where it spares the other workers a write lock.
            if not self._last_claim_found and not self._worth_claiming(free):
                return started
            job = self.jobs.claim(self.worker_id, self.config.heartbeat_timeout)
            self._last_claim_found = job is not None
            if job is None:
                return started
            self._start(job, reaper)
            started = True

    def _worth_claiming(self, free: Capacity) -> bool:
        """A cheap read-only look (the same policy as the claim) before a write transaction."""
        now = utc_now()
        head = self.store.claimable_jobs(1, now)
        if not head:
            return False
        if self.store.queue_state().paused:
            return False
        args = (self.capacity, free, now, self.config.reserve_after)
        if pick(head, *args) is not None:
            return True
        return pick(self.store.claimable_jobs(CLAIM_WINDOW, now), *args) is not None

    def _nothing_left(self) -> bool:
        """Nothing this worker could run is queued, and nothing runs anywhere (a running
        job of a lost worker may still come back to the queue)."""
        if self.store.jobs(["running"], limit=1):
            return False
        return not any(fits(job, self.capacity) for job in self.store.jobs(["queued"]))

    # -- one job -------------------------------------------------------------
    def _start(self, job: JobView, reaper: Reaper) -> None:
        gpu_ids = tuple(job.state.gpu_ids) if isinstance(job.state, Running) else ()
        run_dir = self.runs_dir / job.run_id
        start_run_files(run_dir, job)
        env = self._job_env(job, run_dir, gpu_ids)
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
        self.running[job.id] = Attempt(
            job, process, run_dir, gpu_ids, self.config.heartbeat_interval
        )
        where = f" on GPU {','.join(map(str, gpu_ids))}" if gpu_ids else ""
        self.say(f"Job #{job.id} started{where}: {' '.join(job.command_argv)}")

    def _job_env(self, job: JobView, run_dir: Path, gpu_ids: tuple[int, ...]) -> dict[str, str]:
        env = dict(os.environ)
        env.update(job.env)
        env.update(
            WHIRR_JOB_ID=str(job.id),
            WHIRR_RUN_ID=job.run_id,
            WHIRR_RUN_DIR=str(run_dir),
            PYTHONUNBUFFERED="1",
        )
        if self.capacity.gpu_ids:
            # Exactly the GPUs the claim assigned; none at all for a CPU-only job.
            env["CUDA_VISIBLE_DEVICES"] = ",".join(map(str, gpu_ids))
        return env

    def _tend(self, attempt: Attempt, reaper: Reaper) -> float:
        """Look after one running job; returns how long the loop may sleep."""
        process = attempt.process
        code = process.exit_code
        if code is not None:
            self._report_exit(attempt, code, reaper)
            return 0.0
        now = time.monotonic()
        job = self.store.job(attempt.id)
        if job is not None and job.cancel_requested and process.term_sent_at is None:
            self.say(f"Job #{attempt.id}: cancel requested; stopping its process group.")
            process.terminate()
        if attempt.timeout_due(now):
            self.say(f"Job #{attempt.id}: timed out after {attempt.job.timeout_seconds:g}s.")
            attempt.timed_out = True
            process.terminate()
        if now >= attempt.next_heartbeat:
            try:
                self.jobs.heartbeat(
                    attempt.id, self.worker_id, attempt.job.attempt, self.config.heartbeat_timeout
                )
            except LeaseLost as exc:
                self.say(f"Job #{attempt.id}: lease lost ({exc}); killing it.")
                self._stop(attempt, reaper, kill=True, report=False)
                return 0.0
            attempt.next_heartbeat = now + self.config.heartbeat_interval
        waits = [attempt.next_heartbeat - now]
        until_kill = process.escalate(self.config.kill_grace_period)
        if until_kill is not None:
            waits.append(until_kill)
        if attempt.deadline is not None and not attempt.timed_out:
            waits.append(attempt.deadline - now)
        stuck_after = self.config.notify.stuck_after
        if stuck_after > 0 and self.notifier.enabled:
            quiet = attempt.quiet_for(now)
            if quiet >= stuck_after and not attempt.stuck_reported:
                attempt.stuck_reported = True
                detail = f"no new metric row for {quiet:.0f}s"
                self.say(f"Job #{attempt.id} looks stuck: {detail}.")
                self.notifier.fire("stuck", attempt.job, str(attempt.run_dir), detail)
            waits.append(stuck_after - quiet if quiet < stuck_after else stuck_after)
        return max(0.0, min(waits))

    def _report_exit(self, attempt: Attempt, code: int, reaper: Reaper) -> None:
        reaper.forget(attempt.process.pgid)
        del self.running[attempt.id]
        timeout = attempt.job.timeout_seconds
        try:
            if attempt.timed_out:
                job = self.jobs.finish(
                    attempt.id,
                    self.worker_id,
                    attempt.job.attempt,
                    code,
                    error=f"timed out after {timeout:g}s",
                    outcome="timed_out",
                )
            else:
                job = self.jobs.finish(attempt.id, self.worker_id, attempt.job.attempt, code)
        except LeaseLost as exc:
            self.say(f"Job #{attempt.id} exited {code} but its lease was lost: {exc}")
            return
        finish_run_files(attempt.run_dir, self.store.run(job.run_id))
        if job.status == "queued":
            self.say(
                f"Job #{job.id} failed (exit {code}); retry {job.failed_attempts} of "
                f"{job.retries} as attempt {job.attempt}."
            )
            return
        self.say(f"Job #{job.id} {job.status} (exit {code}).")
        event = event_for(job.status)
        if event is not None:
            self.notifier.fire(event, job, str(attempt.run_dir))

    def _stop(self, attempt: Attempt, reaper: Reaper, *, kill: bool, report: bool = True) -> None:
        attempt.process.kill() if kill else attempt.process.terminate()
        code = attempt.process.wait(timeout=5.0)
        if report and code is not None:
            self._report_exit(attempt, code, reaper)
        else:
            reaper.forget(attempt.process.pgid)
            self.running.pop(attempt.id, None)
