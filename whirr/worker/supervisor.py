"""Process safety for jobs: spawn in a new session, die with the worker, stop as a group.

Used by every Python worker (local and remote). The guarantees:

* A job runs in its own session and process group, so a terminal's Ctrl+C reaches the
  worker (which drains) but not the job, and a stop can signal the job's whole tree.
* ``PR_SET_PDEATHSIG`` kills the job's leader when the worker dies. The kernel sends it
  when the *thread* that forked exits, so workers spawn from their long-lived main thread.
* A ``Reaper`` process, forked once when a worker starts, holds a pipe from the worker and
  a list of live job groups. When the pipe closes (the worker exited or was killed with
  SIGKILL) it kills every listed group, catching the grandchildren PDEATHSIG cannot.
* Stops are SIGTERM to the group, a grace period, then SIGKILL to the group.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import select
import shutil
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Mapping, Sequence

from whirr.filemodes import open_private

_PR_SET_PDEATHSIG = 1

try:
    _libc: ctypes.CDLL | None = ctypes.CDLL(None, use_errno=True)  # our own symbols include libc's
except OSError:  # pragma: no cover - non-glibc platforms
    _libc = None


#: util-linux's ``setpriv --pdeathsig`` sets PR_SET_PDEATHSIG and then execs the job. With
#: it the worker spawns without a Python ``preexec_fn``, so CPython can use vfork: the
#: worker is blocked ~0.5 ms per spawn instead of ~4 ms (measured here, a worker with
#: threads). Where setpriv is missing, a ``preexec_fn`` calls prctl itself.
_SETPRIV = shutil.which("setpriv")


class SpawnError(Exception):
    """The job could not start; the message says why, for the job's error field."""


def _child_setup(parent_pid: int) -> Callable[[], None]:
    """What the forked child runs before exec: ask to die with the worker."""

    def setup() -> None:
        if _libc is not None:
            _libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
        if os.getppid() != parent_pid:  # the worker died before prctl took effect
            os.kill(os.getpid(), signal.SIGKILL)

    return setup


class JobProcess:
    """A running job: its leader process and its process group."""

    def __init__(self, popen: subprocess.Popen[bytes], on_exit: Callable[[], None]) -> None:
        self.popen = popen
        self.pid = popen.pid
        self.pgid = popen.pid  # start_new_session makes the leader its group's id
        self.started = time.monotonic()
        self.term_sent_at: float | None = None
        self.killed = False
        self.on_exit = on_exit
        _exits.watch(self)

    @property
    def exit_code(self) -> int | None:
        """The exit status once ended: minus the signal number when signalled."""
        return self.popen.returncode

    def signal_group(self, sig: int) -> None:
        """Send ``sig`` to every process of the job's group (gone already is fine)."""
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.pgid, sig)

    def terminate(self) -> None:
        """Begin a graceful stop: SIGTERM to the group (once)."""
        if self.term_sent_at is None:
            self.term_sent_at = time.monotonic()
            self.signal_group(signal.SIGTERM)

    def kill(self) -> None:
        """SIGKILL the whole group."""
        self.killed = True
        self.signal_group(signal.SIGKILL)

    def escalate(self, grace: float) -> float | None:
        """SIGKILL the group once ``grace`` seconds passed since SIGTERM. Returns seconds
        until that is due (None when no stop is in progress or it already happened)."""
        if self.term_sent_at is None or self.killed:
            return None
        remaining = self.term_sent_at + grace - time.monotonic()
        if remaining <= 0:
            self.kill()
            return None
        return remaining

    def wait(self, timeout: float | None = None) -> int | None:
        """Block until the leader exits (or ``timeout``)."""
        try:
            return self.popen.wait(timeout)
        except subprocess.TimeoutExpired:
            return None


class _ExitWatcher:
    """One thread that wakes the worker's loop the moment any job exits.

    It selects on a pidfd per running job (readable once that process has exited), so a
    job's exit is noticed at once, without polling and without a thread per job: starting
    a thread costs the worker a context switch (~1 ms here) on every spawn. Where pidfds
    are not available (Linux before 5.3), each job gets a waiting thread instead.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._jobs: dict[int, JobProcess] = {}
        self._wake_r, self._wake_w = -1, -1
        self._thread: threading.Thread | None = None

    def watch(self, job: JobProcess) -> None:
        try:
            fd = os.pidfd_open(job.pid)
        except (AttributeError, OSError):
            threading.Thread(target=self._wait_one, args=(job,), daemon=True).start()
            return
        with self._lock:
            if self._thread is None:
                self._wake_r, self._wake_w = os.pipe()
                self._thread = threading.Thread(target=self._run, name="job-exits", daemon=True)
                self._thread.start()
            self._jobs[fd] = job
        os.write(self._wake_w, b"+")

    @staticmethod
    def _wait_one(job: JobProcess) -> None:
        job.popen.wait()
        job.on_exit()

    def _run(self) -> None:
        while True:
            with self._lock:
                fds = [self._wake_r, *self._jobs]
            ready, _, _ = select.select(fds, [], [])
            for fd in ready:
                if fd == self._wake_r:
                    os.read(self._wake_r, 4096)
                    continue
                with self._lock:
                    job = self._jobs.pop(fd)
                os.close(fd)
                job.popen.wait()  # reaps the exited leader at once and sets returncode
                job.on_exit()


_exits = _ExitWatcher()


def spawn(
    argv: Sequence[str],
    workdir: str,
    env: Mapping[str, str],
    log_path: str,
    on_exit: Callable[[], None],
) -> JobProcess:
    """Start ``argv`` in ``workdir`` with stdout+stderr appended to ``log_path``.

    Raises ``SpawnError`` with a clear reason when it cannot start."""
    if not argv or not argv[0]:
        raise SpawnError("empty command")
    if not os.path.isdir(workdir):
        raise SpawnError(f"working directory {workdir!r} does not exist")
    _check_executable(argv[0], workdir, env.get("PATH", os.defpath))
    if _SETPRIV is not None:
        command = [_SETPRIV, "--pdeathsig", "KILL", "--", *argv]
        setup: Callable[[], None] | None = None
    else:
        command, setup = list(argv), _child_setup(os.getpid())
    log_fd = open_private(log_path, os.O_WRONLY | os.O_APPEND)  # 0600: the job's output
    try:
        popen = subprocess.Popen(
            command,
            cwd=workdir,
            env=dict(env),
            stdin=subprocess.DEVNULL,
            stdout=log_fd,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            preexec_fn=setup,
            close_fds=True,
        )
    except FileNotFoundError:
        raise SpawnError(f"command not found: {argv[0]!r}") from None
    except PermissionError:
        raise SpawnError(f"permission denied: {argv[0]!r} is not executable") from None
    except OSError as exc:
        raise SpawnError(f"cannot start {argv[0]!r}: {exc.strerror or exc}") from None
    finally:
        os.close(log_fd)
    return JobProcess(popen, on_exit)


def _check_executable(program: str, workdir: str, path: str) -> None:
    """Fail early, with a clear reason, for a program that cannot be executed (setpriv
    would otherwise report it only in the job's output, as exit status 127)."""
    if os.sep in program:
        full = program if os.path.isabs(program) else os.path.join(workdir, program)
        if not os.path.exists(full):
            raise SpawnError(f"command not found: {program!r}")
        if os.path.isdir(full) or not os.access(full, os.X_OK):
            raise SpawnError(f"permission denied: {program!r} is not executable")
    elif shutil.which(program, path=path) is None:
        raise SpawnError(f"command not found: {program!r}")


class Reaper:
    """A forked guard that kills registered job groups when the worker goes away."""

    def __init__(self) -> None:
        read_fd, self._write_fd = os.pipe()
        pid = os.fork()
        if pid == 0:  # pragma: no cover - runs in the forked guard
            os.close(self._write_fd)
            _reap_forever(read_fd)
        os.close(read_fd)
        self.pid = pid
        self._lock = threading.Lock()

    def watch(self, pgid: int) -> None:
        """Add a job group to kill if the worker dies."""
        self._send(b"+%d\n" % pgid)

    def forget(self, pgid: int) -> None:
        """The job ended normally: stop tracking its group."""
        self._send(b"-%d\n" % pgid)

    def _send(self, line: bytes) -> None:
        with self._lock:
            os.write(self._write_fd, line)

    def close(self) -> None:
        """Normal shutdown: close the pipe and collect the guard."""
        if self._write_fd >= 0:
            os.close(self._write_fd)
            self._write_fd = -1
            os.waitpid(self.pid, 0)


def _reap_forever(read_fd: int) -> None:  # pragma: no cover - runs in the forked guard
    # A terminal's Ctrl+C and a `kill` of the worker's group must not take the guard
    # with them before it has done its job.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    groups: set[int] = set()
    buffer = b""
    while True:
        try:
            chunk = os.read(read_fd, 4096)
        except InterruptedError:
            continue
        if not chunk:
            break
        buffer += chunk
        *lines, buffer = buffer.split(b"\n")
        for line in lines:
            if line.startswith(b"+"):
                groups.add(int(line[1:]))
            elif line.startswith(b"-"):
                groups.discard(int(line[1:]))
    for pgid in groups:
        with contextlib.suppress(OSError):
            os.killpg(pgid, signal.SIGKILL)
    os._exit(0)
