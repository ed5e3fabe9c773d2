"""A disk that fills up, for the tests of disk-full handling.

As root (CI), a real tmpfs of a few MiB is mounted and "filling" it writes a filler file
until the kernel says ENOSPC. Elsewhere (no mount without root) the disk is an ordinary
directory and "filling" lowers ``RLIMIT_FSIZE`` to the size of the largest file there, so
that no file may grow: writes fail part way (a short write) and then with EFBIG, as they
would on a full disk. Either way the scenario runs in a child process (``run_scenario``),
so a lowered limit never reaches pytest itself, and the test cannot pass without a write
having failed: each scenario asserts that its write was refused.

Set ``WHIRR_TEST_DISK_FAULT=rlimit`` to force the second kind as root.
"""

from __future__ import annotations

import contextlib
import errno
import os
import resource
import signal
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
FILLER = ".filler"
#: The errors a full disk (or a file-size limit standing in for one) raises.
FULL_ERRNOS = (errno.ENOSPC, errno.EFBIG)


@contextlib.contextmanager
def small_disk(tmp_path: Path, size: str = "4m") -> Iterator[tuple[Path, str]]:
    """(a directory on a small disk, its kind: ``tmpfs`` or ``rlimit``)."""
    where = tmp_path / "disk"
    where.mkdir()
    if os.geteuid() != 0 or os.environ.get("WHIRR_TEST_DISK_FAULT") == "rlimit":
        yield where, "rlimit"
        return
    subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(where)], check=True)
    try:
        yield where, "tmpfs"
    finally:
        subprocess.run(["umount", "-l", str(where)], check=False)


def fill(where: Path, kind: str) -> None:
    """Leave no room to grow any file under ``where`` (run in the scenario's process)."""
    if kind == "rlimit":
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # EFBIG instead of being killed
        largest = max((p.stat().st_size for p in where.rglob("*") if p.is_file()), default=0)
        _, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
        resource.setrlimit(resource.RLIMIT_FSIZE, (largest, hard))
        return
    fd = os.open(where / FILLER, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    try:
        for chunk in (1 << 20, 1 << 12, 1):
            block = b"\0" * chunk
            with contextlib.suppress(OSError):
                for _ in range(1 << 16):  # bounded: a few MiB at most
                    if os.write(fd, block) < chunk:
                        break
    finally:
        os.close(fd)


def free(where: Path, kind: str) -> None:
    """Give the room back."""
    if kind == "rlimit":
        _, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
        resource.setrlimit(resource.RLIMIT_FSIZE, (hard, hard))
        return
    (where / FILLER).unlink()


def run_scenario(where: Path, kind: str, body: str, timeout: float = 60) -> str:
    """Run ``body`` (Python, with ``where``, ``kind``, ``fill`` and ``free`` defined) in a
    child process; its stdout. Fails the test with the child's stderr if it fails."""
    prelude = (
        "import sys\n"
        f"sys.path.insert(0, {str(REPO / 'tests')!r})\n"
        "from pathlib import Path\n"
        "from disk_faults import fill as _fill, free as _free, FULL_ERRNOS\n"
        f"where, kind = Path({str(where)!r}), {kind!r}\n"
        "fill = lambda: _fill(where, kind)\n"
        "free = lambda: _free(where, kind)\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", prelude + textwrap.dedent(body)],
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=where,
    )
    assert proc.returncode == 0, f"scenario failed ({kind}):\n{proc.stdout}\n{proc.stderr}"
    return proc.stdout
