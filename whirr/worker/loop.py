"""The worker loop: one for ``whirr worker`` and ``whirr worker --server``.

``WorkerLoop`` claims what fits the GPUs and CPU slots it has free, starts each job in its
own process group (``whirr.worker.supervisor``), looks after the running ones (heartbeats,
cancel requests, time limits, stuck runs, the SIGTERM-grace-SIGKILL stop), reports how each
ended, and drains or exits when asked. It reaches the queue only through a ``WorkerLink``
(``whirr.worker.link``): the project's store in this process, or a server over HTTP. So a
remote worker packs GPUs, runs several jobs and honours priorities, dependencies, retries
and time limits exactly as a local one: the claim decision is ``Jobs.claim`` either way.

The loop sleeps on one ``threading.Event`` that the link (something new in the queue, a
job handed over by a long-poll), each job's exit and the signal handlers set. So an idle
worker costs nothing, a submit starts within milliseconds, and a finished job is reported
at once. Timed duties (heartbeats, grace-period kills, timeouts, stuck-run checks, reports
to retry) set the sleep's timeout instead of a polling interval.

Fencing: a heartbeat refused (``LeaseLost``) means another worker may run the job now, so
the loop kills its child and reports nothing. Self-fencing: once ``lease - margin`` has
passed since the last renewal the queue acknowledged (counted from when that renewal was
*sent*, on this machine's boot-time clock), the loop stops the job (SIGTERM to its group,
SIGKILL after the kill grace) and reports nothing: the margin is the kill grace plus
``CLOCK_RATE`` of the lease plus ``clock_skew``, so the job is dead before the queue can
consider the lease expired and hand the job out again (docs/architecture.md, "Leases").
"""

from __future__ import annotations

import os
import signal
import threading
import time
from collections.abc import Callable
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING

import msgspec

from whirr.config import NotifyConfig
from whirr.events.usage import JobUsage
from whirr.filemodes import private_dir
from whirr.projections.queue import Capacity
from whirr.services.errors import InvalidRequest, LeaseLost
from whirr.services.run_files import check_run_id
from whirr.wire import schemas
from whirr.worker.attempt import Attempt, Report
from whirr.worker.leftovers import drained_reason, leftover_note
from whirr.worker.link import Ending, Unreachable, WorkerLink
from whirr.worker.notify import Notifier, event_for
from whirr.worker.run_size import SizeWatch, check_every, human_bytes
from whirr.worker.runfiles import fail_run_files, finish_run_files, start_run_files
from whirr.worker.supervisor import Reaper, SpawnError, spawn

if TYPE_CHECKING:
    from whirr.worker.shipping import JobShipping

#: How often an idle worker checks for expired leases of other (lost) workers.
LEASE_SWEEP_SECONDS = 1.0
#: Pause before asking again after the queue could not be reached.
RETRY_PAUSE = 2.0
#: How long a stopping worker ships what is left (its ledgers keep the rest).
SHIP_ON_EXIT_S = 5.0
#: Once an interrupted worker's jobs have ended, how long their reports may still take
#: (their files' shipping included) before the worker exits anyway.
REPORTS_ON_INTERRUPT_S = 5.0
#: What an operator interrupt records as the job's error (it ends ``cancelled``).
INTERRUPTED = "worker interrupted"


#: How far apart the worker's clock and the queue's may run (a fraction of the lease).
CLOCK_RATE = 0.01
#: A project's own workers judge each other's leases by this machine's wall clock, which
#: their boot-time clock follows to within NTP's slew: a small constant allowance.
LOCAL_CLOCK_SKEW = 0.05


class LoopSettings(msgspec.Struct, frozen=True, kw_only=True):
    """How the loop treats its jobs (seconds)."""

    #: Lease length: heartbeats renew it; the queue requeues a job not renewed this long.
    lease_seconds: float
    heartbeat_interval: float
    #: SIGTERM -> SIGKILL delay when a job is stopped.
    kill_grace_period: float = 10.0
    #: The longest an idle loop sleeps before looking again anyway.
    recheck: float = 1.0
    #: The constant part of the clock allowance: how far the queue's clock may be off
    #: this worker's when judging a lease (another machine's clock: 1 s; a project's own
    #: workers share this machine's clock, so less).
    clock_skew: float = 1.0
    #: A running job's directory past this many bytes is logged and recorded once
    #: (``run.size_warning``; ``whirr.worker.run_size``); None: not watched.
    warn_run_dir_bytes: int | None = None
    #: A job's output past this many bytes keeps its head and tail in output.log, the
    #: middle dropped (``whirr.worker.output_cap``); None: all of it.
    max_output_bytes: int | None = None

    def __post_init__(self) -> None:
        check_lease(self)

    @property
    def margin(self) -> float:
        """How long before the queue may requeue a job its worker stops it: the kill grace
        (so it is dead, not dying) and the clock allowance."""
        return self.kill_grace_period + CLOCK_RATE * self.lease_seconds + self.clock_skew

    @property
    def fence_after(self) -> float:
        """Seconds after the last acknowledged renewal was sent that a job is stopped."""
        return self.lease_seconds - self.margin


def check_lease(settings: LoopSettings) -> None:
    """Refuse a lease too short to fence in: two heartbeats (one may be lost) and the
    margin must fit in it (``InvalidRequest`` naming the numbers)."""
    s = settings
    needed = 2 * s.heartbeat_interval + s.margin
    if s.lease_seconds < needed:
        raise InvalidRequest(
            f"a lease of {s.lease_seconds:g}s is too short: it must be at least 2 x "
            f"heartbeat {s.heartbeat_interval:g}s + kill grace {s.kill_grace_period:g}s + "
            f"clock margin {s.margin - s.kill_grace_period:.2f}s = {needed:.2f}s "
            "(a longer lease, shorter heartbeats or a shorter kill grace)"
        )


def fence_clock() -> float:
    """Seconds on a clock that never goes back and counts a suspended machine's sleep
    (the queue's wall clock runs on meanwhile): CLOCK_BOOTTIME where there is one."""
    return time.clock_gettime(_BOOTTIME) if _BOOTTIME is not None else time.monotonic()


_BOOTTIME: int | None = getattr(time, "CLOCK_BOOTTIME", None)


def _counted_by_the_signal_thread(signum: int, frame: FrameType | None) -> None:
    """SIGINT/SIGTERM: counted by ``WorkerLoop._count_signals`` (a handler must exist so
    that the signal neither kills the worker nor raises KeyboardInterrupt)."""


class WorkerLoop:
    """Runs queued jobs on ``capacity`` until stopped, drained, or the queue is empty."""

    def __init__(
        self,
        link: WorkerLink,
        runs_dir: Path,
        capacity: Capacity,
        settings: LoopSettings,
        *,
        exit_when_empty: bool = False,
        notify: NotifyConfig | None = None,
        say: Callable[[str], None] = lambda message: None,
        shipping: JobShipping | None = None,
    ) -> None:
        self.link = link
        self.runs_dir = runs_dir
        self.capacity = capacity
        self.settings = settings
        self.exit_when_empty = exit_when_empty
        self.say = say
        self.notify = notify or NotifyConfig()
        self.notifier = Notifier(self.notify, say)
        self.wake = threading.Event()
        self.stop_requests = 0
        #: The wakeup pipe the signal thread reads (None: not installed, or restored).
        self._signal_fds: tuple[int, int] | None = None
        self._previous_wakeup_fd = -1
        #: True once a second stop request stopped running jobs.
        self.interrupted = False
        #: Once interrupted jobs have all ended: when their pending reports are given up.
        self.reports_until: float | None = None
        self.running: dict[int, Attempt] = {}
        #: Ends of attempts the queue has not taken yet (it could not be reached).
        self.reports: list[Report] = []
        #: A worker without the server's filesystem ships its run files (None: it shares
        #: it, or it is a project's own worker).
        self.shipping = shipping

    # -- lifecycle -----------------------------------------------------------
    def run(self) -> int:
        """Work until drained or stopped; returns a process exit status."""
        private_dir(self.runs_dir)  # owner-only, like each run directory in it
        reaper = Reaper()  # forked before any thread starts
        self._install_signal_handlers()
        if not self._register():
            reaper.close()
            self.notifier.close()
            self._restore_signals()
            self.say("Worker stopped before it could register.")
            return 0
        self.link.watch(self.wake.set)
        if self.shipping is not None:
            for run_id in self.shipping.open(self.wake.set):
                self.say(f"Run {run_id}: shipping the files a previous worker left.")
        gpus = self.capacity.gpu_ids
        offer = f"GPUs {','.join(map(str, gpus))}, " if gpus else ""
        self.say(
            f"Worker {self.link.worker_id} started (pid {os.getpid()}; {offer}"
            f"{self.capacity.slots} CPU slot(s)); waiting for jobs."
        )
        self.say(f"Containment: {reaper.describe()}.")
        reason = "stopped"
        try:
            reason = self._loop(reaper)
        finally:
            for attempt in self.running.values():  # an error in the loop
                attempt.process.kill()
            reaper.close()
            if self.shipping is not None:
                self.shipping.close(SHIP_ON_EXIT_S)
            self.link.stopped(reason)
            self.link.close()
            self.notifier.close()
            self._restore_signals()
        self.say(f"Worker {self.link.worker_id} {reason}.")
        return 0

    def _register(self) -> bool:
        """Register, trying again while the queue cannot be reached (a server that
        restarts with its workers); False when a stop request came first."""
        while True:
            try:
                self.link.register(self.capacity, os.getpid())
                return True
            except Unreachable as exc:
                if self.stop_requests:
                    return False
                self.say(f"Could not register ({exc}); retrying in {RETRY_PAUSE:.0f}s.")
                self.wake.wait(RETRY_PAUSE)
                self.wake.clear()
                if self.stop_requests:
                    return False

    def _install_signal_handlers(self) -> None:
        """Count SIGINT/SIGTERM on a thread of their own, from the bytes the interpreter's
        C-level handler writes to a wakeup fd, one per delivered signal. A Python-level
        handler runs only when the main thread next checks for signals, which CPython
        3.11 can put off for as long as it sleeps while other threads run (the eval
        breaker is recomputed without the signal): a stop request would wait with it."""
        read_fd, write_fd = os.pipe()
        os.set_blocking(write_fd, False)  # the C handler must never block
        self._signal_fds = (read_fd, write_fd)
        self._previous_wakeup_fd = signal.set_wakeup_fd(write_fd, warn_on_full_buffer=False)
        signal.signal(signal.SIGINT, _counted_by_the_signal_thread)
        signal.signal(signal.SIGTERM, _counted_by_the_signal_thread)
        threading.Thread(
            target=self._count_signals, args=(read_fd,), name="whirr-signals", daemon=True
        ).start()

    def _count_signals(self, read_fd: int) -> None:
        stops = {int(signal.SIGINT), int(signal.SIGTERM)}
        try:
            while True:
                try:
                    delivered = os.read(read_fd, 64)
                except InterruptedError:
                    continue
                if not delivered:
                    return  # the loop ended and closed the write end
                counted = sum(1 for signum in delivered if signum in stops)
                if counted:
                    self.stop_requests += counted
                    self.wake.set()
        except OSError:
            return
        finally:
            os.close(read_fd)

    def _restore_signals(self) -> None:
        """Give the wakeup fd back (an in-process loop, as in tests, ends before its
        process does) and end the counting thread."""
        if self._signal_fds is None:
            return
        _, write_fd = self._signal_fds
        self._signal_fds = None
        signal.set_wakeup_fd(self._previous_wakeup_fd)
        os.close(write_fd)  # the thread reads the end of the pipe, then closes its end

    # -- the loop ------------------------------------------------------------
    def _loop(self, reaper: Reaper) -> str:
        next_sweep = 0.0
        next_seen = time.monotonic() + self.settings.heartbeat_interval
        announced_drain = False
        while True:
            self.wake.clear()
            if self.stop_requests >= 2:
                self._interrupt()
            draining = bool(self.stop_requests) or self.link.draining()
            if draining and not announced_drain:
                announced_drain = True
                if self.running:
                    self.say("Draining: finishing the running job(s) (stop again to kill).")
            sleep = self.settings.recheck
            if self.running:
                for job_id in self.link.cancels(list(self.running)):
                    self.running[job_id].cancel_requested = True
            for attempt in list(self.running.values()):
                sleep = min(sleep, self._tend(attempt, reaper))
            sleep = min(sleep, self._send_reports())
            if self.stop_requests >= 2 and not self.running:
                now = time.monotonic()
                if self.reports_until is None:
                    self.reports_until = now + REPORTS_ON_INTERRUPT_S
                if not self.reports:
                    return "stopped (jobs interrupted)" if self.interrupted else "stopped"
                if now >= self.reports_until:
                    # Files still shipping or not: the end is worth more than the files
                    # (unreported, the job would be retried once its lease runs out).
                    for report in list(self.reports):
                        report.shipped = None
                        self._send(report)
                    if self.reports:
                        self.say(f"Could not report {len(self.reports)} job end(s); stopping.")
                    return "stopped (jobs interrupted)"
                sleep = min(sleep, self.reports_until - now)
            if draining:
                # A claim asked for before the drain may still hand a job over: it is
                # this worker's now (it fits: nothing was claimed since), so it runs.
                handed = self.link.handed_over()
                if handed is not None:
                    self._start(handed, reaper)
                    continue
                if not self.running and not self.reports:
                    return "drained"
                self.wake.wait(sleep)
                continue
            now = time.monotonic()
            if now >= next_sweep:
                for job in self.link.sweep():
                    self.say(f"Job #{job.id}: worker lost; now {job.status}.")
                next_sweep = now + LEASE_SWEEP_SECONDS
            if self._claim_what_fits(reaper):
                continue  # look again at once: a started job may already have ended
            if not self.running and not self.reports:
                left = (
                    self.link.nothing_left(self.capacity)
                    if self.exit_when_empty and not self.link.claiming
                    else None
                )
                if left is not None:
                    if left:  # said, not "queue empty": these jobs wait for another worker
                        self.say(leftover_note(left, self.capacity))
                    return drained_reason(left)
                if now >= next_seen:
                    self.link.seen()
                    next_seen = now + self.settings.heartbeat_interval
            self.wake.wait(sleep)

    def _interrupt(self) -> None:
        """A second stop request: SIGTERM every job (each may checkpoint), SIGKILL after
        the kill grace (``_tend`` escalates); a third request kills them at once. They end
        ``cancelled`` ("worker interrupted") and are never retried: the operator stopped
        them, they did not fail."""
        now_too = self.stop_requests >= 3
        fresh = [a for a in self.running.values() if not a.interrupted]
        if fresh and not now_too:
            grace = self.settings.kill_grace_period
            self.say(
                f"Second stop request: stopping the running job(s) (SIGTERM, SIGKILL after "
                f"{grace:g}s; stop again to kill them now)."
            )
        if now_too and any(not a.process.killed for a in self.running.values()):
            self.say("Third stop request: killing the running job(s) now.")
        for attempt in self.running.values():
            attempt.interrupted = True
            self.interrupted = True
            if now_too:
                attempt.process.kill()
            else:
                attempt.process.terminate()

    def _fence_left(self) -> float:
        """Seconds until the first running job must be fenced (inf: none runs). A request
        to the queue waits no longer: the loop must be free to stop that job then."""
        now = fence_clock()
        due = (a.renewed + self.settings.fence_after - now for a in self.running.values())
        return min((d for d in due), default=float("inf"))

    def _free(self) -> Capacity:
        """What the running jobs leave of the capacity (a job holds its GPUs, or a slot)."""
        busy = {g for attempt in self.running.values() for g in attempt.gpu_ids}
        cpu = sum(1 for attempt in self.running.values() if not attempt.gpu_ids)
        return Capacity(
            gpu_ids=tuple(g for g in self.capacity.gpu_ids if g not in busy),
            slots=max(0, self.capacity.slots - cpu),
        )

    def _claim_what_fits(self, reaper: Reaper) -> bool:
        """Claim and start jobs while some fit what is free; True if any started."""
        started = False
        while True:
            free = self._free()
            if not free.gpu_ids and free.slots <= 0:
                return started
            job = self.link.claim(free)
            if job is None:
                return started
            self._start(job, reaper)
            started = True

    # -- one job -------------------------------------------------------------
    def _start(self, job: schemas.Job, reaper: Reaper) -> None:
        claimed = fence_clock()
        run_dir = self.runs_dir / check_run_id(job.run_id)
        start_run_files(run_dir, job)
        shipping = self.shipping
        local_start = shipping.prepare(job, run_dir) if shipping is not None else {}
        try:
            process = spawn(
                job.command_argv,
                job.workdir,
                self._job_env(job, run_dir),
                str(run_dir / "output.log"),
                on_exit=self.wake.set,
                memory_bytes=job.memory_bytes,
                cpus=job.cpus,
                max_output_bytes=self.settings.max_output_bytes,
            )
        except SpawnError as exc:
            self.say(f"Job #{job.id} could not start: {exc}")
            fail_run_files(run_dir, f"could not start: {exc}")
            if shipping is not None:
                shipping.begin(job, run_dir, local_start)
            self._report(job, run_dir, "not_started", None, str(exc))
            return
        reaper.watch(process.pgid)
        try:
            # Bounded like a heartbeat: a start report stuck on a partition must not hold
            # the loop past the moment this job (or another) has to be fenced.
            left = claimed + self.settings.fence_after - fence_clock()
            timeout = max(0.5, min(left, self._fence_left()))
            self.link.started(job, process.pid, run_dir, timeout=timeout)
        except LeaseLost:
            process.kill()
            process.wait(5.0)
            reaper.forget(process.pgid)
            return
        except Unreachable as exc:
            self.say(f"Job #{job.id}: could not report its start ({exc}); running it anyway.")
        if shipping is not None:
            shipping.begin(job, run_dir, local_start)
        limit = self.settings.warn_run_dir_bytes
        watch = (
            None
            if limit is None
            else SizeWatch(limit, check_every(self.settings.heartbeat_interval))
        )
        # The claim's lease began when the queue decided, just before its answer came:
        # counted from the start here (milliseconds later, on a healthy link).
        self.running[job.id] = Attempt(
            job, process, run_dir, self.settings.heartbeat_interval, claimed, watch
        )
        gpus = job.gpu_ids
        where = f" on GPU {','.join(map(str, gpus))}" if gpus else ""
        self.say(f"Job #{job.id} started{where}: {' '.join(job.command_argv)}")

    def _job_env(self, job: schemas.Job, run_dir: Path) -> dict[str, str]:
        env = self.link.base_env()
        if job.run_token:  # a server's job: a token for its own run, this attempt only
            env["WHIRR_TOKEN"] = job.run_token
        env.update(job.env or {})  # a token in the job's own env wins ("" withholds it)
        env.update(
            WHIRR_JOB_ID=str(job.id),
            WHIRR_RUN_ID=job.run_id,
            WHIRR_RUN_DIR=str(run_dir),
            PYTHONUNBUFFERED="1",
        )
        env.update(self.link.fixed_env())
        if self.capacity.gpu_ids:
            # Exactly the GPUs the claim assigned; none at all for a CPU-only job.
            env["CUDA_VISIBLE_DEVICES"] = ",".join(map(str, job.gpu_ids))
            # The indices are NVML's (PCI bus order); CUDA counts fastest first unless
            # told otherwise, which on a box of mixed models is another job's GPU. A job
            # that sets the order itself keeps it (docs/scheduling.md, "GPUs").
            if "CUDA_DEVICE_ORDER" not in (job.env or {}):
                env["CUDA_DEVICE_ORDER"] = "PCI_BUS_ID"
        return env

    def _tend(self, attempt: Attempt, reaper: Reaper) -> float:
        """Look after one running job; returns how long the loop may sleep."""
        process = attempt.process
        code = process.exit_code
        if code is not None:
            self._ended(attempt, code, reaper)
            return 0.0
        now = time.monotonic()
        settings = self.settings
        if attempt.fenced:  # stopping it: only the SIGKILL after the grace is left to do
            until_kill = process.escalate(settings.kill_grace_period)
            return settings.recheck if until_kill is None else min(until_kill, settings.recheck)
        if now >= attempt.next_heartbeat:
            sent = fence_clock()  # the queue's new lease starts after this, never before
            left = attempt.renewed + settings.fence_after - sent
            try:
                # Bounded by the time left before fencing: a request stuck on a partition
                # must not hold the loop past the moment the job has to stop.
                timeout = max(0.5, min(left, self._fence_left()))
                if self.link.heartbeat(attempt.job, timeout=timeout):
                    attempt.cancel_requested = True
            except LeaseLost as exc:
                self.say(f"Job #{attempt.id}: lease lost ({exc}); killing it.")
                self._stop(attempt, reaper, kill=True, report=False)
                return 0.0
            except Unreachable as exc:
                self.say(f"Job #{attempt.id}: heartbeat failed ({exc}); retrying.")
                now = time.monotonic()
                attempt.next_heartbeat = now + min(RETRY_PAUSE, settings.heartbeat_interval)
            else:
                attempt.renewed = sent
                now = time.monotonic()
                attempt.next_heartbeat = now + settings.heartbeat_interval
        unrenewed = fence_clock() - attempt.renewed
        if unrenewed >= settings.fence_after:
            self.say(
                f"Job #{attempt.id}: no renewal acknowledged for {unrenewed:.1f}s (lease "
                f"{settings.lease_seconds:g}s - margin {settings.margin:.1f}s); the queue may "
                "hand it out again soon: stopping it (fenced)."
            )
            attempt.fenced = True
            process.terminate()
            until_kill = process.escalate(settings.kill_grace_period)
            return 0.0 if until_kill is None else min(until_kill, settings.recheck)
        if attempt.cancel_requested and process.term_sent_at is None:
            self.say(f"Job #{attempt.id}: cancel requested; stopping its process group.")
            process.terminate()
        if attempt.timeout_due(now):
            self.say(f"Job #{attempt.id}: timed out after {attempt.job.timeout_seconds:g}s.")
            attempt.timed_out = True
            process.terminate()
        waits = [attempt.next_heartbeat - now, settings.fence_after - unrenewed]
        if attempt.size_watch is not None:
            self._watch_size(attempt, attempt.size_watch, now)
            waits.append(attempt.size_watch.next_check - now)
        until_kill = process.escalate(settings.kill_grace_period)
        if until_kill is not None:
            waits.append(until_kill)
        if attempt.deadline is not None and not attempt.timed_out:
            waits.append(attempt.deadline - now)
        stuck_after = self.notify.stuck_after
        if stuck_after > 0 and self.notifier.enabled:
            quiet = attempt.quiet_for(now)
            if quiet >= stuck_after and not attempt.stuck_reported:
                attempt.stuck_reported = True
                detail = f"no new metric row for {quiet:.0f}s"
                self.say(f"Job #{attempt.id} looks stuck: {detail}.")
                self.notifier.fire("stuck", attempt.job, str(attempt.run_dir), detail)
            waits.append(stuck_after - quiet if quiet < stuck_after else stuck_after)
        return max(0.0, min(waits))

    def _watch_size(self, attempt: Attempt, watch: SizeWatch, now: float) -> None:
        """Measure the job's run directory when due; a new crossing of the warning size
        is logged and recorded (a failed record is tried at the next measurement)."""
        size = watch.crossed(attempt.run_dir, now)
        if size is None:
            return
        self.say(
            f"Job #{attempt.id}: its run directory {attempt.run_dir} holds {human_bytes(size)}, "
            f"past {human_bytes(watch.limit)} (--warn-run-dir-size)."
        )
        try:
            # Bounded like a heartbeat: the loop must be free when a job is to be fenced.
            timeout = max(0.5, min(self._fence_left(), self.settings.heartbeat_interval))
            self.link.size_warning(attempt.job, size, watch.limit, timeout=timeout)
        except Exception as exc:  # a warning never stops the loop, whatever went wrong
            self.say(f"Job #{attempt.id}: could not record the size warning ({exc}).")
            return
        watch.recorded()

    def _ended(self, attempt: Attempt, code: int, reaper: Reaper) -> None:
        if attempt.fenced:  # the queue hands it out again: nothing to report
            self.say(f"Job #{attempt.id}: stopped (fenced; exit {code}); not reported.")
            self._drop(attempt, reaper)
            return
        reaper.forget(attempt.process.pgid)
        del self.running[attempt.id]
        job, run_dir, usage = attempt.job, attempt.run_dir, attempt.process.usage
        if attempt.timed_out:
            error = f"timed out after {job.timeout_seconds:g}s"
            self._report(job, run_dir, "timed_out", code, error, usage)
        elif attempt.interrupted and not attempt.cancel_requested:
            self._report(job, run_dir, "interrupted", code, INTERRUPTED, usage)
        else:
            self._report(job, run_dir, "exited", code, None, usage)

    def _stop(self, attempt: Attempt, reaper: Reaper, *, kill: bool, report: bool = True) -> None:
        if kill:
            attempt.process.kill()
        else:
            attempt.process.terminate()
        code = attempt.process.wait(timeout=5.0)
        if report and code is not None:
            self._ended(attempt, code, reaper)
        else:
            self._drop(attempt, reaper)

    def _drop(self, attempt: Attempt, reaper: Reaper) -> None:
        """Forget an attempt whose end is not reported (its lease is lost or fenced)."""
        reaper.forget(attempt.process.pgid)
        del self.running[attempt.id]
        if self.shipping is not None:
            # Not reported (a lost lease): ship what is left while the server takes
            # this attempt's files (it refuses them once a newer attempt exists).
            self.shipping.end(attempt.job)
            self.shipping.release(attempt.job)

    # -- reports -------------------------------------------------------------
    def _report(
        self,
        job: schemas.Job,
        run_dir: Path,
        ending: Ending,
        exit_code: int | None,
        error: str | None,
        usage: JobUsage | None = None,
    ) -> None:
        give_up_at = time.monotonic() + self.settings.lease_seconds
        report = Report(job, run_dir, ending, exit_code, error, give_up_at, usage)
        self.reports.append(report)
        if self.shipping is not None:
            # The end is reported once the files are on the server (bounded), so whoever
            # waits for the job reads them complete; the shipper wakes us when done.
            report.shipped = self.shipping.end(job)
            report.next_heartbeat = time.monotonic() + self.settings.heartbeat_interval
            if not report.shipped.is_set():
                return
            report.shipped = None
        self._send(report)

    def _send_reports(self) -> float:
        """Send again the reports that are due; returns the time until the next is."""
        now = time.monotonic()
        for report in list(self.reports):
            if report.shipped is not None and not self._shipped(report, now):
                continue
            if report.next_try <= now:
                self._send(report)
        pending = [
            r.next_heartbeat - now if r.shipped is not None else r.next_try - now
            for r in self.reports
        ]
        return max(0.0, min(pending, default=self.settings.recheck))

    def _shipped(self, report: Report, now: float) -> bool:
        """True once the files of ``report``'s attempt are shipped; meanwhile its lease is
        kept (the job still runs as far as the queue knows)."""
        assert report.shipped is not None
        if report.shipped.is_set():
            report.shipped = None
            report.give_up_at = now + self.settings.lease_seconds
            return True
        if now >= report.next_heartbeat:
            report.next_heartbeat = now + self.settings.heartbeat_interval
            try:
                self.link.heartbeat(report.job)
            except LeaseLost as exc:
                self.reports.remove(report)
                self.say(f"Job #{report.job.id}: lease lost while shipping its files ({exc}).")
                self._release(report)
            except Unreachable:
                pass  # the shipper cannot get through either; the report waits
        return False

    def _release(self, report: Report) -> None:
        if self.shipping is not None:
            self.shipping.release(report.job)

    def _send(self, report: Report) -> None:
        job, code = report.job, report.exit_code
        try:
            now_job = self.link.finish(job, report.ending, code, report.error, report.usage)
        except LeaseLost as exc:
            self.reports.remove(report)
            self.say(f"Job #{job.id} exited {code} but its lease was lost: {exc}")
            self._release(report)
            return
        except Unreachable as exc:
            if time.monotonic() >= report.give_up_at:
                self.reports.remove(report)
                self.say(f"Job #{job.id}: giving up reporting its end: {exc}")
                self._release(report)
            else:
                self.say(f"Job #{job.id}: could not report its end ({exc}); retrying.")
                report.next_try = time.monotonic() + RETRY_PAUSE
            return
        self.reports.remove(report)
        if report.ending == "not_started":
            self._release(report)
            return
        finish_run_files(report.run_dir, self.link.run(job.run_id))
        self._release(report)  # ships the final meta.json, then forgets the run
        if now_job is None:
            self.say(f"Job #{job.id} ended (exit {code}).")
            return
        if now_job.status == "queued":
            self.say(
                f"Job #{job.id} failed (exit {code}); retrying it as attempt "
                f"{now_job.attempt} (it may be retried {now_job.retries} time(s))."
            )
            return
        self.say(f"Job #{job.id} {now_job.status} (exit {code}).")
        event = event_for(now_job.status)
        if event is not None:
            self.notifier.fire(event, now_job, str(report.run_dir))
