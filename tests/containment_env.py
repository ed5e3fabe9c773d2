"""Helpers for the containment tests (Python and Rust workers): a cgroup v2 hierarchy of
the test's own, and a look for processes carrying a job's marker.

These machines run cgroup v1 without systemd, but as root a cgroup2 hierarchy mounts
anywhere and ``cgroup.kill`` works there: the tests mount one into a temporary directory
so both containment paths run. Without root the cgroup tests fail in CI (``CI=true``),
with the reason, and are skipped elsewhere.
"""

from __future__ import annotations

import os
import secrets
import signal
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from server_process import wait_for

MARKER = b"WHIRR_JOB_TOKEN="


def _unavailable(reason: str) -> None:
    if os.environ.get("CI") == "true":
        pytest.fail(f"cgroup containment tests cannot run: {reason}")
    pytest.skip(reason)


@pytest.fixture(scope="session", name="cgroup2_mount")
def cgroup2_mount_fixture(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A cgroup2 hierarchy mounted for the session (root only)."""
    if os.geteuid() != 0:
        _unavailable("mounting a cgroup2 hierarchy needs root (CI runs as root)")
    mount = tmp_path_factory.mktemp("cgroup2")
    done = subprocess.run(
        ["mount", "-t", "cgroup2", "none", str(mount)], capture_output=True, text=True
    )
    if done.returncode != 0:
        _unavailable(f"mount -t cgroup2 failed: {done.stderr.strip()}")
    if not (mount / "cgroup.kill").exists() and not _kill_supported(mount):
        subprocess.run(["umount", str(mount)], check=False)
        _unavailable("this kernel has no cgroup.kill (Linux 5.14+)")
    yield mount
    subprocess.run(["umount", "-l", str(mount)], check=False)


def _kill_supported(mount: Path) -> bool:
    probe = mount / f"probe-{secrets.token_hex(4)}"
    probe.mkdir()
    try:
        return (probe / "cgroup.kill").exists()
    finally:
        probe.rmdir()


@pytest.fixture(name="cgroup_dir")
def cgroup_dir_fixture(cgroup2_mount: Path) -> Iterator[Path]:
    """An empty cgroup of the test's own for a worker to make its job cgroups in."""
    path = cgroup2_mount / f"whirr-test-{secrets.token_hex(4)}"
    path.mkdir()
    yield path
    (path / "cgroup.kill").write_text("1")
    for sub in sorted(path.rglob("*"), key=lambda p: len(p.parts), reverse=True):
        if sub.is_dir():
            wait_for(lambda s=sub: _rmdir(s), timeout=5)
    wait_for(lambda: _rmdir(path), timeout=5)


def _rmdir(path: Path) -> bool:
    try:
        path.rmdir()
    except FileNotFoundError:
        return True
    except OSError:
        return False
    return True


@pytest.fixture(params=["cgroup", "pgroup"], name="containment")
def containment_fixture(request: pytest.FixtureRequest) -> dict[str, str]:
    """The environment that makes a worker use one containment or the other."""
    if request.param == "pgroup":
        return {"WHIRR_CONTAINMENT": "pgroup"}
    path = request.getfixturevalue("cgroup_dir")
    return {"WHIRR_CONTAINMENT": "cgroup", "WHIRR_CGROUP_DIR": str(path)}


def marked(token: str) -> list[int]:
    """Live processes whose environment holds ``WHIRR_JOB_TOKEN=token``."""
    needle = b"\0" + MARKER + token.encode() + b"\0"
    found = []
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            env = b"\0" + Path(f"/proc/{name}/environ").read_bytes() + b"\0"
            state = Path(f"/proc/{name}/stat").read_text().rpartition(")")[2].split()[0]
        except OSError:
            continue
        if needle in env and state not in "ZX":
            found.append(int(name))
    return found


def none_left(token: str, timeout: float = 5.0) -> None:
    """Waits (bounded) until no process carries the job's marker; fails naming them."""
    try:
        wait_for(lambda: not marked(token), timeout=timeout)
    except AssertionError:
        left = marked(token)
        for pid in left:  # leave nothing behind for the next test
            os.kill(pid, signal.SIGKILL)
        raise AssertionError(f"processes of the job left behind: {left}") from None


def read_token(path: Path) -> str:
    return wait_for(lambda: path.exists() and path.read_text().strip(), timeout=30)


#: A job that prints its cgroup's ``memory.max`` and ``cpu.max`` (read below
#: ``WHIRR_CG_MOUNT``, see ``limits_env``), then ``done``.
PRINTS_LIMITS = (
    'cg=$(sed -n "s/^0:://p" /proc/self/cgroup); '
    'cat "$WHIRR_CG_MOUNT$cg/memory.max" "$WHIRR_CG_MOUNT$cg/cpu.max" 2>/dev/null; echo done'
)


def limits_env(containment: dict[str, str]) -> dict[str, str]:
    """The worker's ``containment`` environment plus where ``PRINTS_LIMITS`` finds the
    cgroup hierarchy (empty without a cgroup)."""
    cgroup = containment.get("WHIRR_CGROUP_DIR")
    return {**containment, "WHIRR_CG_MOUNT": str(Path(cgroup).parent) if cgroup else ""}


def assert_limits_printed(log: list[str], containment: dict[str, str]) -> None:
    """``log`` (the lines of a ``PRINTS_LIMITS`` job with 16 GiB and 4 CPUs) shows both
    limits where the cgroup offers their controllers; for each one it does not, the log's
    first line says that limit is not enforced."""
    cgroup = containment.get("WHIRR_CGROUP_DIR")
    offered = Path(cgroup, "cgroup.controllers").read_text().split() if cgroup else []
    expected = []
    if "memory" in offered:
        expected.append(str(16 * 2**30))
    if "cpu" in offered:
        expected.append("400000 100000")
    missing = [f for c, f in (("memory", "--memory"), ("cpu", "--cpus")) if c not in offered]
    if missing:
        assert log[0].startswith(f"whirr: {'/'.join(missing)} not enforced on this worker")
        log = log[1:]
    assert log == [*expected, "done"]
