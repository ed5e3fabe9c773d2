"""Process safety for jobs: spawn in a new session, die with the worker, stop as a whole.

Used by every Python worker (local and remote). The guarantees:

* A job runs in its own session and process group, so a terminal's Ctrl+C reaches the
  worker (which drains) but not the job, and a stop can signal the job's whole tree.
* Every process of the job is held by its containment (``whirr.containment``): a cgroup
  v2 of its own where the machine allows it (the leader is moved in before it execs the
  command: it waits on a pipe until the worker has written its pid to ``cgroup.procs``),
  else its process group plus a per-job marker in its environment, with the worker a
  child subreaper. Setsid'd descendants are held either way.
* When the job's leader exits, whatever it left running is killed (a ``sleep &`` behind
  an ``exit 0`` does not outlive its job), before the job counts as ended.
* ``PR_SET_PDEATHSIG`` kills the job's leader when the worker dies. The kernel sends it
  when the *thread* that forked exits, so workers spawn from their long-lived main thread.
* A ``Reaper`` process, forked once when a worker starts, in a session of its own (a
  SIGHUP or SIGKILL of the worker's process group does not reach it), holds a pipe from
  the worker and a list of live job groups. When the pipe closes (the worker exited or
  was killed) it kills every listed group and every process of the worker's jobs (their
  cgroups, or the processes carrying the worker's marker), and removes the cgroups.
* Stops are SIGTERM to every process of the job, a grace period, then SIGKILL to all.
* The job's stdout and stderr are one pipe that the worker copies into ``output.log``
  (``whirr.worker.output_cap``: within the cap). A job has ended once its output is
  complete there too, so whoever reads the log after its end reads all of it.
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

from whirr.containment import ContainmentError, JobBox, WorkerBox
from whirr.events.usage import JobUsage
from whirr.filemodes import open_private
from whirr.worker.output_cap import OutputCopier

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
#: In a cgroup, the job's first process is a shell that waits for one line on stdin (the
#: worker writes it once the process is in the job's cgroup), then execs the job with
#: stdin from /dev/null. The worker closing the pipe unwritten (it died) ends it, unrun.
_HANDSHAKE = ["/bin/sh", "-c", 'read -r _ || exit 125; exec "$@" </dev/null', "whirr-job"]

#: This worker process's containment, set up once (``worker_box``).
_box: WorkerBox | None = None


def worker_box() -> WorkerBox:
    """The containment of this worker process, set up on first use (by ``Reaper``)."""
    global _box
    if _box is None:
        _box = WorkerBox.open()
    return _box


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
    """A running job: its leader process, its process group and its containment."""

    def __init__(
        self,
        popen: subprocess.Popen[bytes],
        box: JobBox,
        on_exit: Callable[[], None],
        output: OutputCopier,
    ) -> None:
        self.popen = popen
        self.pid = popen.pid
        self.pgid = popen.pid  # start_new_session makes the leader its group's id
        self.box = box
        self.started = time.monotonic()
        self.term_sent_at: float | None = None
        self.killed = False
        self.on_exit = on_exit
        self.output = output
        #: Set once the leader has exited, nothing of the job is left running and its
        #: output is complete in output.log.
        self.ended = threading.Event()
        _exits.watch(self)

    @property
    def exit_code(self) -> int | None:
        """The exit status once ended: minus the signal number when signalled."""
        return self.popen.returncode if self.ended.is_set() else None

    @property
    def usage(self) -> JobUsage | None:
        """What the whole job used (cgroup accounting), once ended; None without."""
        return self.box.usage

    def signal_group(self, sig: int) -> None:
        """Send ``sig`` to every process of the job (gone already is fine)."""
        self.box.signal(sig)

    def terminate(self) -> None:
        """Begin a graceful stop: SIGTERM to every process of the job (once)."""
        if self.term_sent_at is None:
            self.term_sent_at = time.monotonic()
            self.signal_group(signal.SIGTERM)

    def kill(self) -> None:
        """SIGKILL every process of the job."""
        self.killed = True
        self.box.kill()

    def escalate(self, grace: float) -> float | None:
        """SIGKILL the job once ``grace`` seconds passed since SIGTERM. Returns seconds
        until that is due (None when no stop is in progress or it already happened)."""
        if self.term_sent_at is None or self.killed:
            return None
        remaining = self.term_sent_at + grace - time.monotonic()
        if remaining <= 0:
            self.kill()
            return None
        return remaining

    def wait(self, timeout: float | None = None) -> int | None:
        """Block until the job has ended (or ``timeout``)."""
        deadline = None if timeout is None else time.monotonic() + timeout
        try:
            self.popen.wait(timeout)
        except subprocess.TimeoutExpired:
            return None
        left = None if deadline is None else max(0.0, deadline - time.monotonic())
        return self.popen.returncode if self.ended.wait(left) else None

    def _leader_exited(self) -> None:
        """After the leader was reaped: end what it left, let the output copier finish
        (on its own thread: a slow drain must not delay the exits of other jobs), then
        tell the loop."""
        try:
            self.box.end()
        finally:
            self.output.job_gone(self._output_complete)

    def _output_complete(self) -> None:
        self.ended.set()
        self.on_exit()


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
        job._leader_exited()

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
                job._leader_exited()


_exits = _ExitWatcher()


def spawn(
    argv: Sequence[str],
    workdir: str,
    env: Mapping[str, str],
    log_path: str,
    on_exit: Callable[[], None],
    *,
    memory_bytes: int | None = None,
    cpus: float | None = None,
    max_output_bytes: int | None = None,
) -> JobProcess:
    """Start ``argv`` in ``workdir`` with stdout+stderr appended to ``log_path`` (at
    most ``max_output_bytes`` of it, head and tail; None: all), in a containment of its
    own (limited to ``memory_bytes``/``cpus`` where it can be).

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
    worker = worker_box()
    unenforced = worker.unenforced(memory_bytes, cpus)
    if unenforced:
        # Run it unlimited rather than not at all, and say so where its user looks.
        _note(
            log_path,
            f"{'/'.join(unenforced)} not enforced on this worker; the job runs without "
            f"them. Containment: {worker.describe()}",
        )
        memory_bytes = None if "--memory" in unenforced else memory_bytes
        cpus = None if "--cpus" in unenforced else cpus
    try:
        box = worker.new_job(env.get("WHIRR_JOB_ID", "x"))
    except (ContainmentError, OSError) as exc:
        raise SpawnError(f"cannot contain the job: {exc}") from None
    try:
        box.limit(memory_bytes, cpus)
    except OSError as exc:
        box.end()
        raise SpawnError(f"cannot limit the job: {exc.strerror or exc}") from None
    try:
        output = (log_path, max_output_bytes)
        return _start(argv[0], command, setup, workdir, env, output, box, on_exit)
    except BaseException:
        box.end()  # nothing started in it: remove its cgroup
        raise


def _start(
    program: str,
    command: list[str],
    setup: Callable[[], None] | None,
    workdir: str,
    env: Mapping[str, str],
    output: tuple[str, int | None],
    box: JobBox,
    on_exit: Callable[[], None],
) -> JobProcess:
    """Spawn ``command`` in ``box`` (through the handshake where ``box`` is a cgroup),
    its output copied into ``output``: (the log's path, the cap)."""
    handshake = box.cgroup is not None
    stdin_r, stdin_w = os.pipe() if handshake else (subprocess.DEVNULL, -1)
    if handshake:
        command = [*_HANDSHAKE, *command]
    read_fd, write_fd = os.pipe()  # close-on-exec: no other job inherits them
    try:
        copier = OutputCopier(read_fd, *output)  # owns read_fd from here
    except BaseException:
        for fd in (read_fd, write_fd, stdin_r, stdin_w) if handshake else (read_fd, write_fd):
            os.close(fd)
        raise
    started = False
    try:
        popen = subprocess.Popen(
            command,
            cwd=workdir,
            env={**env, **box.env()},
            stdin=stdin_r,
            stdout=write_fd,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            preexec_fn=setup,
            close_fds=True,
        )
        started = True
    except FileNotFoundError:
        raise SpawnError(f"command not found: {program!r}") from None
    except PermissionError:
        raise SpawnError(f"permission denied: {program!r} is not executable") from None
    except OSError as exc:
        raise SpawnError(f"cannot start {program!r}: {exc.strerror or exc}") from None
    finally:
        # From here the job's processes hold the only write ends: EOF once all are gone.
        os.close(write_fd)
        if handshake:
            os.close(stdin_r)
            if not started:
                os.close(stdin_w)
        if not started:
            copier.wait()  # the end of an empty output: at once
    try:
        box.adopt(popen.pid)
    except ContainmentError as exc:
        os.close(stdin_w)  # the shell reads end of input and exits, the job unrun
        popen.wait()
        copier.job_gone(lambda: None)
        copier.wait()
        raise SpawnError(str(exc)) from None
    if handshake:
        os.write(stdin_w, b"go\n")
        os.close(stdin_w)
    return JobProcess(popen, box, on_exit, copier)


def _note(log_path: str, line: str) -> None:
    """A line from whirr in the job's output log."""
    fd = open_private(log_path, os.O_WRONLY | os.O_APPEND)
    try:
        os.write(fd, f"whirr: {line}\n".encode())
    finally:
        os.close(fd)


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
    """A forked guard that kills the jobs of the worker when the worker goes away."""

    def __init__(self) -> None:
        self.box = worker_box()  # set up (a cgroup, or the subreaper) before the fork
        read_fd, self._write_fd = os.pipe()
        pid = os.fork()
        if pid == 0:  # pragma: no cover - runs in the forked guard
            os.close(self._write_fd)
            _reap_forever(read_fd, self.box)
        os.close(read_fd)
        self.pid = pid
        self._lock = threading.Lock()

    def describe(self) -> str:
        """Which containment holds this worker's jobs, in words."""
        return self.box.describe()

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
        """Normal shutdown: close the pipe and collect the guard (which removes the
        worker's cgroups)."""
        if self._write_fd >= 0:
            os.close(self._write_fd)
            self._write_fd = -1
            os.waitpid(self.pid, 0)


def _reap_forever(read_fd: int, box: WorkerBox) -> None:  # pragma: no cover - the guard
    # A session of its own: a terminal's hangup, Ctrl+C, or a signal to the worker's
    # process group (`kill -HUP -- -<pgid>`, a dropped SSH session) must not take the
    # guard with them before it has done its job.
    with contextlib.suppress(OSError):
        os.setsid()
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, signal.SIG_IGN)
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
    with contextlib.suppress(Exception):
        box.end_everything()
    os._exit(0)
