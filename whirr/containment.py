"""Containment of a job's processes: a cgroup v2 per job where the machine allows it,
else the job's process group plus a per-job marker, with the worker a child subreaper.

Two ways to hold every process a job starts, setsid'd grandchildren included:

* **cgroup v2** (``kind == "cgroup"``): the worker makes ``whirr-worker-<pid>/`` in a
  writable cgroup v2 directory (``WHIRR_CGROUP_DIR``, else its own cgroup from
  ``/proc/self/cgroup``), and one ``job-<id>-<n>/`` in it per job. The job's first process
  is moved in before it execs its command, so everything it starts is born inside; a
  process cannot leave a cgroup it does not own a writable parent of. Ending the job
  writes ``cgroup.kill`` (every process in it, at once). ``cpu.stat`` accounts the job's
  CPU time; ``memory.peak`` its memory where the memory controller is enabled there;
  ``memory.max``/``cpu.max`` limit it where memory/cpu are.
* **process group + subreaper** (``kind == "pgroup"``): each job runs in its own session,
  its environment holds ``WHIRR_JOB_TOKEN=<worker token>.<job token>``, and the worker is
  a child subreaper (``PR_SET_CHILD_SUBREAPER``), so orphans of the job come back to it
  rather than to init. Ending the job kills its process group and every process whose
  ``/proc/<pid>/environ`` holds the token (looked up again until none is left), then
  reaps the killed ones the worker adopted. Limits of the marker: a process that clears
  its environment (``env -i``) or runs as another user (setuid) is not found by it, only
  by the process group; a setsid'd orphan that exits by itself while its job still runs
  stays a zombie of the worker until the worker exits.

``WHIRR_CONTAINMENT`` = ``auto`` (default: cgroup where possible), ``cgroup`` (refuse to
start without it) or ``pgroup`` (never use cgroups).
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import secrets
import signal
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from whirr.config import ConfigError
from whirr.events.usage import JobUsage

MARKER = "WHIRR_JOB_TOKEN"
MODE_ENV = "WHIRR_CONTAINMENT"
DIR_ENV = "WHIRR_CGROUP_DIR"
#: The controllers a job can be limited by (and the memory one accounts its peak).
LIMIT_CONTROLLERS = ("memory", "cpu")
#: How long ending a job waits for its cgroup to empty / its marked processes to go.
END_WAIT_S = 5.0
#: cpu.max's period (the default, 100 ms).
CPU_PERIOD_US = 100_000

_PR_SET_CHILD_SUBREAPER = 36

try:
    _libc: ctypes.CDLL | None = ctypes.CDLL(None, use_errno=True)
except OSError:  # pragma: no cover - non-glibc platforms
    _libc = None


class ContainmentError(ConfigError):
    """Containment asked for (``WHIRR_CONTAINMENT=cgroup``) is not available, or a job
    could not be put in its cgroup; the message says why."""


@dataclass(frozen=True)
class Plan:
    """What this machine allows: how jobs will be held, and why not better."""

    kind: str  # "cgroup" | "pgroup"
    cgroup_dir: str | None = None  # where the worker makes its cgroups
    controllers: frozenset[str] = frozenset()  # of LIMIT_CONTROLLERS, usable in jobs
    why: str = ""  # why not cgroups / which controllers are missing

    def describe(self) -> str:
        """One line for ``whirr worker`` and ``whirr doctor``."""
        unenforced = "--memory/--cpus not enforced (a job asking runs unlimited; its log says so)"
        if self.kind == "pgroup":
            return f"process group + subreaper ({self.why}); no accounting; {unenforced}"
        parts = ["kill", "cpu time"]
        if "memory" in self.controllers:
            parts += ["memory peak", "--memory"]
        if "cpu" in self.controllers:
            parts.append("--cpus")
        text = f"cgroup v2 in {self.cgroup_dir} ({', '.join(parts)})"
        missing = [c for c in LIMIT_CONTROLLERS if c not in self.controllers]
        if missing:
            flags = "/".join(f"--{'cpus' if c == 'cpu' else c}" for c in missing)
            text += f"; {flags} not enforced ({self.why})"
        return text


# -- detection ------------------------------------------------------------------
def own_cgroup_dir() -> str | None:
    """The directory of this process's cgroup v2, through a cgroup2 mount; None when
    the process is in no cgroup v2 hierarchy that is mounted here."""
    try:
        with open("/proc/self/cgroup") as f:
            lines = f.read().splitlines()
        with open("/proc/self/mountinfo") as f:
            mounts = f.read().splitlines()
    except OSError:
        return None
    own = next((line[3:] for line in lines if line.startswith("0::")), None)
    if own is None:
        return None
    for line in mounts:
        fields = line.split()
        if " - cgroup2 " not in line or len(fields) < 5:
            continue
        root, point = fields[3], fields[4]
        if own == root or own.startswith(root.rstrip("/") + "/"):
            rest = own[len(root.rstrip("/")) :].lstrip("/")
            path = os.path.join(point, rest) if rest else point
            if os.path.isdir(path):
                return path
    return None


def detect(*, enable: bool = False) -> Plan:
    """How jobs would be held here. With ``enable``, also turns on the limit controllers
    the cgroup offers but does not pass to its children yet (the worker does; doctor
    only looks)."""
    mode = os.environ.get(MODE_ENV, "auto").strip().lower() or "auto"
    if mode not in ("auto", "cgroup", "pgroup"):
        raise ContainmentError(f"{MODE_ENV} must be auto, cgroup or pgroup, not {mode!r}")
    if mode == "pgroup":
        return Plan("pgroup", why=f"{MODE_ENV}=pgroup")
    wanted = os.environ.get(DIR_ENV, "").strip()
    base = wanted or own_cgroup_dir()
    why = _unusable(base, named=bool(wanted))
    if why is not None:
        if mode == "cgroup" or wanted:
            raise ContainmentError(f"cannot contain jobs in a cgroup v2: {why}")
        return Plan("pgroup", why=why)
    assert base is not None
    controllers, missing = _controllers(base, enable=enable)
    return Plan("cgroup", base, controllers, missing)


def _unusable(base: str | None, *, named: bool) -> str | None:
    """Why cgroups cannot hold jobs under ``base`` (None: they can)."""
    if base is None:
        return "no cgroup v2 hierarchy is mounted for this process"
    where = f"{DIR_ENV}={base}" if named else base
    if not os.path.isfile(os.path.join(base, "cgroup.procs")):
        return f"{where} is not a cgroup v2 directory"
    probe = os.path.join(base, f"whirr-probe-{os.getpid()}-{secrets.token_hex(4)}")
    try:
        os.mkdir(probe)
    except OSError as exc:
        return f"cannot make a cgroup in {where} ({exc.strerror}; not delegated to this user)"
    try:
        if not os.path.exists(os.path.join(probe, "cgroup.kill")):
            return "the kernel has no cgroup.kill (Linux 5.14 or later needed)"
        if not os.access(os.path.join(probe, "cgroup.procs"), os.W_OK):
            return f"cannot move processes into cgroups of {where}"
    finally:
        with contextlib.suppress(OSError):
            os.rmdir(probe)
    return None


def _controllers(base: str, *, enable: bool) -> tuple[frozenset[str], str]:
    """The limit controllers that job cgroups under ``base`` will have, and why the
    others will not."""
    available = set(_read(base, "cgroup.controllers").split())
    passed = set(_read(base, "cgroup.subtree_control").split())
    if enable:
        for name in LIMIT_CONTROLLERS:
            if name in available and name not in passed:
                with contextlib.suppress(OSError):
                    _write(base, "cgroup.subtree_control", f"+{name}")
        passed = set(_read(base, "cgroup.subtree_control").split())
    usable = frozenset(c for c in LIMIT_CONTROLLERS if c in passed)
    absent = [c for c in LIMIT_CONTROLLERS if c not in available]
    unpassed = [c for c in LIMIT_CONTROLLERS if c in available and c not in passed]
    notes = []
    if absent:
        notes.append(f"{'/'.join(absent)} not offered to {base} (e.g. bound to cgroup v1)")
    if unpassed:
        notes.append(
            f"{'/'.join(unpassed)} not enabled in {base}/cgroup.subtree_control "
            f"(a cgroup with processes of its own cannot pass them on; set {DIR_ENV} "
            "to an empty delegated cgroup)"
        )
    return usable, "; ".join(notes)


# -- the worker's side -----------------------------------------------------------
class WorkerBox:
    """The containment of one worker process: its cgroup (or its subreaper role) and
    the token prefix every one of its jobs carries."""

    def __init__(self, plan: Plan) -> None:
        self.plan = plan
        self.token = secrets.token_hex(8)
        self.dir: str | None = None
        self._jobs = 0

    @classmethod
    def open(cls) -> WorkerBox:
        """Detect and set up what this machine allows (raises ``ContainmentError`` when
        ``WHIRR_CONTAINMENT=cgroup`` cannot be had)."""
        box = cls(detect(enable=True))
        try:
            box.start()
        except OSError as exc:
            raise ContainmentError(f"cannot set up the worker's cgroup: {exc}") from None
        return box

    def start(self) -> None:
        if self.plan.kind == "cgroup":
            assert self.plan.cgroup_dir is not None
            remove_stale_worker_cgroups(self.plan.cgroup_dir)
            path = os.path.join(self.plan.cgroup_dir, f"whirr-worker-{os.getpid()}")
            os.makedirs(path, exist_ok=True)
            for name in self.plan.controllers:
                with contextlib.suppress(OSError):
                    _write(path, "cgroup.subtree_control", f"+{name}")
            self.dir = path
        else:
            set_child_subreaper()

    @property
    def controllers(self) -> frozenset[str]:
        if self.dir is None:
            return frozenset()
        return frozenset(_read(self.dir, "cgroup.subtree_control").split()) & set(LIMIT_CONTROLLERS)

    def describe(self) -> str:
        return self.plan.describe()

    def unenforced(self, memory_bytes: int | None, cpus: float | None) -> list[str]:
        """The limits asked for that jobs here cannot be held to (as options)."""
        have = self.controllers
        wanted = {"memory": memory_bytes is not None, "cpu": cpus is not None}
        flags = {"memory": "--memory", "cpu": "--cpus"}
        return [flags[c] for c, asked in wanted.items() if asked and c not in have]

    def new_job(self, job_id: str) -> JobBox:
        """The containment of one job (its cgroup is made here)."""
        self._jobs += 1
        token = f"{self.token}.{secrets.token_hex(8)}"
        cgroup = None
        if self.dir is not None:
            cgroup = os.path.join(self.dir, f"job-{_safe(job_id)}-{self._jobs}")
            os.mkdir(cgroup)
        return JobBox(token, cgroup)

    def end_everything(self) -> None:
        """The worker is gone (or going): kill every job's processes and remove the
        worker's cgroups. Runs in the reaper process as well as in the worker."""
        if self.dir is not None:
            with contextlib.suppress(OSError):
                _write(self.dir, "cgroup.kill", "1")
            remove_tree(self.dir)
        kill_marked(self.token + ".", prefix=True)


@dataclass
class JobBox:
    """One job's containment: its marker token and its cgroup (None without)."""

    token: str
    cgroup: str | None
    pgid: int = 0
    #: What the whole job used, read from its cgroup as it ends (None without one).
    usage: JobUsage | None = None

    def env(self) -> dict[str, str]:
        return {MARKER: self.token}

    def limit(self, memory_bytes: int | None, cpus: float | None) -> None:
        """Set memory.max / cpu.max (the caller checked the controllers exist)."""
        if self.cgroup is None:
            return
        if memory_bytes is not None:
            _write(self.cgroup, "memory.max", str(memory_bytes))
            with contextlib.suppress(OSError):  # no swap past the limit either
                _write(self.cgroup, "memory.swap.max", "0")
        if cpus is not None:
            quota = max(1000, round(cpus * CPU_PERIOD_US))
            _write(self.cgroup, "cpu.max", f"{quota} {CPU_PERIOD_US}")

    def adopt(self, pid: int) -> None:
        """Move ``pid`` (the job's first process, before it execs) into the cgroup."""
        self.pgid = pid
        if self.cgroup is not None:
            try:
                _write(self.cgroup, "cgroup.procs", str(pid))
            except OSError as exc:
                raise ContainmentError(
                    f"cannot move the job into its cgroup {self.cgroup}: {exc.strerror}"
                ) from None

    def members(self) -> list[int]:
        """Every live process of the job that containment can see."""
        if self.cgroup is not None:
            return [int(p) for p in _read(self.cgroup, "cgroup.procs").split()]
        return [p.pid for p in marked(self.token) if p.state not in "ZX"]

    def signal(self, sig: int) -> None:
        """``sig`` to the job's group and to every other process of the job."""
        if self.pgid > 1:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(self.pgid, sig)
        for pid in self.members():
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, sig)

    def kill(self) -> None:
        """SIGKILL every process of the job, at once where a cgroup holds them."""
        if self.cgroup is not None:
            with contextlib.suppress(OSError):
                _write(self.cgroup, "cgroup.kill", "1")
        self.signal(signal.SIGKILL)

    def end(self) -> None:
        """The job's leader has exited (and was reaped): kill what it left, wait until
        nothing of it remains (bounded), record its usage, remove its cgroup."""
        deadline = time.monotonic() + END_WAIT_S
        if self.cgroup is not None:
            self.kill()
            _wait_empty(self.cgroup, deadline)
            self.usage = read_usage(self.cgroup)
            with contextlib.suppress(OSError):
                os.rmdir(self.cgroup)
            return
        if self.pgid > 1:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(self.pgid, signal.SIGKILL)
        kill_marked(self.token, deadline=deadline, pgid=self.pgid)


def set_child_subreaper() -> bool:
    """Make this process the reaper of its descendants' orphans (Linux 3.4+)."""
    if _libc is None:  # pragma: no cover
        return False
    return _libc.prctl(_PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) == 0


# -- /proc --------------------------------------------------------------------------
@dataclass(frozen=True)
class Proc:
    pid: int
    ppid: int
    pgid: int
    sid: int
    state: str


def _stat(pid: int) -> Proc | None:
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            text = f.read().decode("ascii", "replace")
    except OSError:
        return None
    fields = text.rpartition(")")[2].split()  # after the command name, which may hold ")"
    if len(fields) < 4:
        return None
    return Proc(pid, int(fields[1]), int(fields[2]), int(fields[3]), fields[0])


def _pids() -> Iterator[int]:
    with contextlib.suppress(OSError):
        for name in os.listdir("/proc"):
            if name.isdigit():
                yield int(name)


def _carries(pid: int, token: bytes, prefix: bool) -> bool:
    try:
        with open(f"/proc/{pid}/environ", "rb") as f:
            env = f.read()
    except OSError:
        return False
    needle = b"\0" + MARKER.encode() + b"=" + token
    env = b"\0" + env
    if not prefix:
        needle += b"\0"
        env += b"\0"
    return needle in env


def marked(token: str, *, prefix: bool = False) -> list[Proc]:
    """Processes whose environment holds ``WHIRR_JOB_TOKEN=token`` (or a value that
    starts with it, with ``prefix``)."""
    raw = token.encode()
    me = os.getpid()
    found = []
    for pid in _pids():
        if pid != me and _carries(pid, raw, prefix):
            proc = _stat(pid)
            if proc is not None:
                found.append(proc)
    return found


def kill_marked(
    token: str, *, prefix: bool = False, deadline: float | None = None, pgid: int = 0
) -> None:
    """SIGKILL every process marked with ``token`` until none is left (a fork between
    two looks is caught by the next), reaping those this process adopted."""
    deadline = deadline if deadline is not None else time.monotonic() + END_WAIT_S
    me = os.getpid()
    while True:
        live = [p for p in marked(token, prefix=prefix) if p.state not in "ZX"]
        for proc in live:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(proc.pid, signal.SIGKILL)
        _reap_adopted(me, [p.pid for p in live if p.ppid == me], pgid)
        if not live or time.monotonic() >= deadline:
            return


def _reap_adopted(me: int, pids: Iterable[int], pgid: int) -> None:
    """Collect orphans the subreaper adopted: those just killed, and zombies left in the
    job's group or session (their environment is gone, the group is not)."""
    targets = set(pids)
    if pgid > 1:
        for pid in _pids():
            proc = _stat(pid)
            if proc and proc.ppid == me and proc.state == "Z" and pgid in (proc.pgid, proc.sid):
                targets.add(pid)
    for pid in targets:
        with contextlib.suppress(ChildProcessError):
            os.waitpid(pid, 0)


# -- cgroup files -------------------------------------------------------------------
def _read(directory: str, name: str) -> str:
    try:
        with open(os.path.join(directory, name)) as f:
            return f.read()
    except OSError:
        return ""


def _write(directory: str, name: str, value: str) -> None:
    fd = os.open(os.path.join(directory, name), os.O_WRONLY)
    try:
        os.write(fd, value.encode())
    finally:
        os.close(fd)


def _populated(cgroup: str) -> bool:
    for line in _read(cgroup, "cgroup.events").splitlines():
        if line.startswith("populated "):
            return line.split()[1] != "0"
    return os.path.isdir(cgroup) and bool(_read(cgroup, "cgroup.procs").strip())


def _wait_empty(cgroup: str, deadline: float) -> None:
    pause = 0.001
    while _populated(cgroup) and time.monotonic() < deadline:
        time.sleep(pause)  # the kernel empties it in microseconds to milliseconds
        pause = min(pause * 2, 0.05)


def remove_tree(cgroup: str, deadline: float | None = None) -> None:
    """Remove ``cgroup`` and its child cgroups (bottom-up), once each is empty."""
    deadline = deadline if deadline is not None else time.monotonic() + END_WAIT_S
    with contextlib.suppress(OSError):
        for entry in os.scandir(cgroup):
            if entry.is_dir(follow_symlinks=False):
                remove_tree(entry.path, deadline)
    _wait_empty(cgroup, deadline)
    with contextlib.suppress(OSError):  # still busy past the deadline: left behind
        os.rmdir(cgroup)


def remove_stale_worker_cgroups(base: str) -> list[str]:
    """Remove the empty ``whirr-worker-<pid>`` cgroups in ``base`` whose worker is gone
    (killed -9 with its reaper, it never removed its own); returns those removed. One of
    a live worker, or still holding a process, stays: rmdir refuses a populated cgroup
    and this never waits for one to empty."""
    removed = []
    with contextlib.suppress(OSError):
        for entry in os.scandir(base):
            pid = entry.name.removeprefix("whirr-worker-")
            if pid == entry.name or not pid.isdigit() or not entry.is_dir(follow_symlinks=False):
                continue
            if int(pid) == os.getpid() or _alive(int(pid)):
                continue
            if _remove_if_empty(entry.path):
                removed.append(entry.path)
    return removed


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # another user's process
    return True


def _remove_if_empty(cgroup: str) -> bool:
    """rmdir ``cgroup`` and its child cgroups, bottom-up, those with no process (now)."""
    with contextlib.suppress(OSError):
        for entry in os.scandir(cgroup):
            if entry.is_dir(follow_symlinks=False):
                _remove_if_empty(entry.path)
    try:
        os.rmdir(cgroup)
    except OSError:
        return False
    return True


def read_usage(cgroup: str) -> JobUsage | None:
    """What the job used: CPU time (``cpu.stat``, every cgroup v2 has it), and its memory
    peak where the memory controller accounts it (``memory.peak``, Linux 5.19+). None
    when the cgroup could not be read."""
    micros: dict[str, int] = {}
    for line in _read(cgroup, "cpu.stat").splitlines():
        key, _, value = line.partition(" ")
        if key in ("usage_usec", "user_usec", "system_usec") and value.strip().isdigit():
            micros[key] = int(value)
    if "usage_usec" not in micros:
        return None
    peak = _read(cgroup, "memory.peak").strip()

    def seconds(key: str) -> float | None:
        return micros[key] / 1e6 if key in micros else None

    return JobUsage(
        cpu_seconds=micros["usage_usec"] / 1e6,
        cpu_user_seconds=seconds("user_usec"),
        cpu_system_seconds=seconds("system_usec"),
        memory_peak_bytes=int(peak) if peak.isdigit() else None,
    )


def _safe(text: str) -> str:
    return "".join(c if c.isalnum() else "_" for c in text)[:40] or "x"
