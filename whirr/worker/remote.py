"""The remote worker: claims jobs from a whirr server over HTTP and runs them one at a time.

Same process safety as the local worker (``whirr.worker.supervisor``: own session and
group, PDEATHSIG, a reaper that kills job groups if the worker dies, SIGTERM-grace-SIGKILL
stops). Differences: the queue is the server's, reached with long-polling claims so an
idle worker starts a new job at once; the lease is renewed by heartbeats, whose answer
carries cancel requests; run files go to ``<data-dir>/runs/<run_id>/`` (a filesystem the
server shares).

Fencing: when the server answers a heartbeat with 409 the lease is lost (another worker
may already run the job), so the worker kills its child and reports nothing. When the
server cannot be reached for longer than the lease, the worker assumes the same.
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
from typing import Any, cast

from whirr.api.files import check_run_id
from whirr.client import ServerUnreachable, WhirrClient
from whirr.services.errors import LeaseLost, NotFound, WhirrError
from whirr.wire import schemas
from whirr.worker.runfiles import fail_run_files, finish_run_files, start_run_files
from whirr.worker.supervisor import JobProcess, Reaper, SpawnError, spawn

#: Longest a claim long-polls; a stop request interrupts it (see ``_on_signal``).
CLAIM_WAIT = 30.0
#: Pause after the server could not be reached, before trying again.
RETRY_PAUSE = 2.0


class _StopIdle(BaseException):
    """Raised by the signal handler to abandon an idle long-poll at once (a
    BaseException, so no library's ``except Exception`` swallows it)."""


class RemoteSettings:
    """How a remote worker talks to its server and treats its jobs (seconds)."""

    def __init__(
        self,
        *,
        lease_seconds: float = 60.0,
        heartbeat_interval: float | None = None,
        kill_grace_period: float = 10.0,
        claim_wait: float = CLAIM_WAIT,
    ) -> None:
        if not 10 <= lease_seconds <= 600:
            raise ValueError("lease_seconds must be between 10 and 600")
        interval = heartbeat_interval if heartbeat_interval is not None else lease_seconds / 3
        if not 0 < interval < lease_seconds:
            raise ValueError("the heartbeat interval must be shorter than the lease")
        self.lease_seconds = lease_seconds
        self.heartbeat_interval = interval
        self.kill_grace_period = kill_grace_period
        self.claim_wait = min(max(claim_wait, 0.0), 60.0)


class Current:
    """The job a worker is running now."""

    def __init__(self, job: schemas.Job, process: JobProcess, run_dir: Path) -> None:
        self.job = job
        self.process = process
        self.run_dir = run_dir
        self.next_heartbeat = 0.0
        #: When the lease was last renewed (monotonic): the job must die once it lapses.
        self.renewed = time.monotonic()
        limit = job.timeout_seconds
        #: When the job's time limit runs out (monotonic), if it has one.
        self.deadline = None if limit is None else process.started + limit
        self.timed_out = False


class RemoteWorker:
    """Runs a server's queued jobs until stopped (or until the queue is empty)."""

    def __init__(
        self,
        client: WhirrClient,
        data_dir: Path,
        settings: RemoteSettings,
        *,
        worker_id: str | None = None,
        gpu: int | None = None,
        exit_when_empty: bool = False,
        say: Callable[[str], None] = lambda message: None,
    ) -> None:
        self.client = client
        self.runs_dir = data_dir / "runs"
        self.settings = settings
        self.hostname = socket.gethostname()
        self.worker_id = worker_id or f"{self.hostname}-{os.getpid()}"
        self.gpu = gpu
        self.exit_when_empty = exit_when_empty
        self.say = say
        self.wake = threading.Event()
        self.stop_requests = 0
        self.current: Current | None = None
        self._idle_claim = False

    # -- lifecycle -----------------------------------------------------------
    def run(self) -> int:
        """Work until drained or stopped; returns a process exit status."""
        self.runs_dir.mkdir(parents=True, exist_ok=True)
        reaper = Reaper()  # forked before any thread starts
        signal.signal(signal.SIGINT, self._on_signal)
        signal.signal(signal.SIGTERM, self._on_signal)
        gpus = [self.gpu] if self.gpu is not None else []
        self.client.register_worker(self.worker_id, self.hostname, gpus)
        self.say(f"Worker {self.worker_id} started (pid {os.getpid()}) for {self.client.url}.")
        reason = "stopped"
        try:
            reason = self._loop(reaper)
        finally:
            if self.current is not None:  # a second stop request, or an unexpected error
                self.current.process.kill()
            reaper.close()
            try:
                self.client.unregister_worker(self.worker_id)
            except WhirrError as exc:
                self.say(f"Could not unregister: {exc}")
        self.say(f"Worker {self.worker_id} {reason}.")
        return 0

    def _on_signal(self, signum: int, frame: FrameType | None) -> None:
        self.stop_requests += 1
        self.wake.set()
        if self._idle_claim:
            # Idle in a long-poll: leave now. Should the server hand out a job in this
            # very instant, it sees the connection closed and keeps it, or the job's
            # lease runs out and it is requeued: never lost, never run twice.
            self._idle_claim = False
            raise _StopIdle

    # -- the loop ------------------------------------------------------------
    def _loop(self, reaper: Reaper) -> str:
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
                self.wake.wait(self._tend(reaper))
                continue
            if self.stop_requests:
                return "drained"
            job = self._claim()
            if job is not None:
                self._start(job, reaper)
            elif self.stop_requests:
                return "drained"
            elif self.exit_when_empty and self._queue_empty():
                return "drained (queue empty)"

    def _claim(self) -> schemas.Job | None:
        wait = 0.0 if self.exit_when_empty else self.settings.claim_wait
        try:
            self._idle_claim = True
            if self.stop_requests:
                return None
            return self.client.claim(
                self.worker_id,
                gpu_id=self.gpu,
                lease_seconds=self.settings.lease_seconds,
                wait=wait,
            )
        except _StopIdle:
            return None
        except ServerUnreachable as exc:
            self._idle_claim = False
            self.say(f"Server unreachable ({exc}); retrying in {RETRY_PAUSE:.0f}s.")
            self.wake.wait(RETRY_PAUSE)
            return None
        finally:
            self._idle_claim = False

    def _queue_empty(self) -> bool:
        status = self.client.status()
        return status.queued == 0 and status.running == 0

    def _start(self, job: schemas.Job, reaper: Reaper) -> None:
        run_dir = self.runs_dir / check_run_id(job.run_id)
        # runfiles reads only the fields a JobView and the API's Job share.
        start_run_files(run_dir, cast(Any, job))
        try:
            process = spawn(
                job.command_argv,
                job.workdir,
                self._job_env(job, run_dir),
                str(run_dir / "output.log"),
                on_exit=self.wake.set,
            )
        except SpawnError as exc:
            reason = f"could not start: {exc}"
            self.say(f"Job #{job.id} {reason}")
            fail_run_files(run_dir, reason)
            self._report(lambda: self.client.fail(job.id, self.worker_id, job.attempt, reason))
            return
        reaper.watch(process.pgid)
        current = Current(job, process, run_dir)
        try:
            self.client.started(job.id, self.worker_id, job.attempt, process.pid)
        except (LeaseLost, NotFound):
            process.kill()
            process.wait(5.0)
            reaper.forget(process.pgid)
            return
        except ServerUnreachable as exc:
            self.say(f"Job #{job.id}: could not report its start ({exc}); running it anyway.")
        current.next_heartbeat = time.monotonic() + self.settings.heartbeat_interval
        self.current = current
        self.say(f"Job #{job.id} started: {' '.join(job.command_argv)}")

    def _job_env(self, job: schemas.Job, run_dir: Path) -> dict[str, str]:
        env = dict(os.environ)
        # whirr.init() in the job records its run through this server, with this worker's
        # token (whoever can submit a job holds it already); a token in the job's own env
        # wins, and an empty one withholds it (docs/server-setup.md: "Jobs and the token").
        env.pop("WHIRR_TOKEN", None)
        if self.client.token:
            env["WHIRR_TOKEN"] = self.client.token
        env.update(job.env or {})
        env.update(
            WHIRR_JOB_ID=str(job.id),
            WHIRR_RUN_ID=job.run_id,
            WHIRR_RUN_DIR=str(run_dir),
            WHIRR_SERVER_URL=self.client.url,
            PYTHONUNBUFFERED="1",
        )
        if job.gpu_ids:  # the GPUs the server gave this attempt
            env["CUDA_VISIBLE_DEVICES"] = ",".join(map(str, job.gpu_ids))
        elif self.gpu is not None:
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
        if now >= current.next_heartbeat and not self._heartbeat(current, reaper, now):
            return 0.0
        if now - current.renewed > self.settings.lease_seconds:
            self.say(
                f"Job #{current.job.id}: no heartbeat got through for a whole lease; "
                "the server has requeued it. Killing it."
            )
            self._stop_current(reaper, kill=True, report=False)
            return 0.0
        deadline = current.deadline
        if deadline is not None and not current.timed_out and now >= deadline:
            self.say(
                f"Job #{current.job.id}: timed out after "
                f"{current.job.timeout_seconds:g}s; stopping its process group."
            )
            current.timed_out = True
            process.terminate()
        until_kill = process.escalate(self.settings.kill_grace_period)
        waits = [current.next_heartbeat - now]
        if until_kill is not None:
            waits.append(until_kill)
        if current.deadline is not None and not current.timed_out:
            waits.append(current.deadline - now)
        return max(0.0, min(waits))

    def _heartbeat(self, current: Current, reaper: Reaper, now: float) -> bool:
        """Renew the lease; False when the job was stopped because the lease is lost."""
        job = current.job
        try:
            answer = self.client.heartbeat(
                job.id, self.worker_id, job.attempt, self.settings.lease_seconds
            )
        except (LeaseLost, NotFound) as exc:
            self.say(f"Job #{job.id}: lease lost ({exc}); killing it.")
            self._stop_current(reaper, kill=True, report=False)
            return False
        except ServerUnreachable as exc:
            self.say(f"Job #{job.id}: heartbeat failed ({exc}); retrying.")
            current.next_heartbeat = now + min(RETRY_PAUSE, self.settings.heartbeat_interval)
            return True
        current.renewed = now
        current.next_heartbeat = now + self.settings.heartbeat_interval
        if answer.cancel_requested and current.process.term_sent_at is None:
            self.say(f"Job #{job.id}: cancel requested; stopping its process group.")
            current.process.terminate()
        return True

    def _report_exit(self, current: Current, code: int, reaper: Reaper) -> None:
        reaper.forget(current.process.pgid)
        self.current = None
        job = current.job
        if current.timed_out:
            reason = f"timed out after {job.timeout_seconds:g}s"
            sent = self._report(
                lambda: self.client.fail(
                    job.id, self.worker_id, job.attempt, reason, code, timed_out=True
                )
            )
        else:
            sent = self._report(
                lambda: self.client.complete(
                    job.id, self.worker_id, job.attempt, code, run_id=job.run_id
                )
            )
        if not sent:
            return
        try:
            run = self.client.get_run(job.run_id)
        except WhirrError:
            run = None
        # runfiles reads only the fields a RunView and the API's Run share.
        finish_run_files(current.run_dir, cast(Any, run))
        self.say(f"Job #{job.id} ended (exit {code}).")

    def _report(self, send: Callable[[], object]) -> bool:
        """Send an end-of-job report, retrying while the server is unreachable (for up to
        a lease: after that the server has requeued the job anyway)."""
        deadline = time.monotonic() + self.settings.lease_seconds
        while True:
            try:
                send()
                return True
            except LeaseLost as exc:
                self.say(f"Report rejected, the lease was lost: {exc}")
                return False
            except ServerUnreachable as exc:
                if time.monotonic() >= deadline:
                    self.say(f"Giving up reporting: {exc}")
                    return False
                time.sleep(RETRY_PAUSE)

    def _stop_current(self, reaper: Reaper, *, kill: bool, report: bool = True) -> None:
        current = self.current
        assert current is not None
        if kill:
            current.process.kill()
        else:
            current.process.terminate()
        code = current.process.wait(timeout=5.0)
        if report and code is not None:
            self._report_exit(current, code, reaper)
        else:
            reaper.forget(current.process.pgid)
            self.current = None
