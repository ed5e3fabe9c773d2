"""The systemd units shipped in deploy/systemd/ (issue 20 §2): each ExecStart is a real
whirr command whose every option exists (asked of ``whirr CMD --help``), each WHIRR_*
setting is one that command reads, the server may write its data dir, systemd itself
finds nothing to complain about, and docs/server-setup.md points at the files instead of
carrying copies."""

from __future__ import annotations

import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from installs import ROOT

UNITS = ROOT / "deploy" / "systemd"
#: Where the units expect whirr (the docs' install: a venv in /opt/whirr).
INSTALLED = "/opt/whirr/venv/bin/whirr"
#: systemd specifiers the units use, as an instance would expand them.
SPECIFIERS = {"%i": "0", "%H": "gpu-box", "%%": "%"}


def unit_files() -> list[Path]:
    return sorted(UNITS.glob("*.service"))


def settings(path: Path) -> dict[str, list[str]]:
    """``Section.Key`` -> its values, in order (systemd keys may repeat)."""
    found: dict[str, list[str]] = {}
    section = ""
    for raw in path.read_text().splitlines():
        line = raw.strip()
        if not line or line.startswith(("#", ";")):
            continue
        if line.startswith("["):
            section = line.strip("[]")
            continue
        key, _, value = line.partition("=")
        found.setdefault(f"{section}.{key.strip()}", []).append(value.strip())
    return found


def expand(text: str) -> str:
    return re.sub(r"%.", lambda m: SPECIFIERS[m.group(0)], text)


def whirr_help(command: str) -> str:
    done = subprocess.run(
        [sys.executable, "-m", "whirr.cli.main", command, "--help"],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    return " ".join(done.stdout.split())  # one line: help wraps "[env var: NAME]"


def exec_start(unit: dict[str, list[str]]) -> list[str]:
    (line,) = unit["Service.ExecStart"]
    return shlex.split(expand(line))


def environment(unit: dict[str, list[str]]) -> dict[str, str]:
    pairs = [part for line in unit.get("Service.Environment", []) for part in shlex.split(line)]
    return dict(pair.split("=", 1) for pair in pairs)


def test_the_server_and_worker_units_are_shipped() -> None:
    assert [p.name for p in unit_files()] == ["whirr-server.service", "whirr-worker@.service"]


@pytest.mark.parametrize("path", unit_files(), ids=lambda p: p.name)
def test_exec_start_is_a_whirr_command_with_options_it_has(path: Path) -> None:
    unit = settings(path)
    argv = exec_start(unit)
    assert argv[0] == INSTALLED, argv
    command, args = argv[1], argv[2:]
    text = whirr_help(command)  # fails for a command whirr does not have
    options = set(re.findall(r"(?<![\w-])(--?[A-Za-z][\w-]*)", text.split("Options:", 1)[1]))
    used = [arg.split("=", 1)[0] for arg in args if arg.startswith("-")]
    assert used, argv
    for flag in used:
        assert flag in options, f"whirr {command} has no {flag} ({path.name})"
    # The whole command line parses (values included: --help comes last, after them).
    parsed = subprocess.run(
        [sys.executable, "-m", "whirr.cli.main", command, *args, "--help"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert parsed.returncode == 0, parsed.stderr
    for name in environment(unit):
        assert f"env var: {name}" in text, f"whirr {command} does not read {name}"


def test_the_server_may_write_its_data_dir_and_nothing_else() -> None:
    unit = settings(UNITS / "whirr-server.service")
    data_dir = environment(unit)["WHIRR_DATA_DIR"]
    assert unit["Service.ProtectSystem"] == ["strict"]
    assert unit["Service.ReadWritePaths"] == [data_dir]
    assert unit["Service.NoNewPrivileges"] == ["yes"]


def test_the_worker_keeps_what_jobs_need() -> None:
    unit = settings(UNITS / "whirr-worker@.service")
    # its jobs' cgroups below its own (containment), so /sys/fs/cgroup stays writable
    assert unit["Service.Delegate"] == ["yes"]
    assert "Service.ProtectControlGroups" not in unit
    # the GPUs' device files, and workdirs anywhere (often under /home)
    for hides in ("PrivateDevices", "ProtectHome", "DevicePolicy"):
        assert f"Service.{hides}" not in unit, hides
    assert unit["Service.ProtectSystem"] == ["full"]  # /usr and /etc only
    # SIGTERM drains: to the worker only, with time for the running job
    assert unit["Service.KillMode"] == ["mixed"] and unit["Service.KillSignal"] == ["SIGTERM"]


def test_systemd_verifies_the_units(tmp_path: Path) -> None:
    analyze = shutil.which("systemd-analyze")
    assert analyze, "systemd-analyze not found: apt-get install systemd"
    whirr = Path(sys.executable).parent / "whirr"
    names = []
    for path in unit_files():
        # systemd checks that ExecStart exists: point it at this checkout's whirr.
        text = path.read_text().replace(INSTALLED, str(whirr))
        name = path.name.replace("@.", "@0.")  # a template is verified as an instance
        (tmp_path / name).write_text(text)
        names.append(f"./{name}")
    done = subprocess.run(
        [analyze, "verify", *names], cwd=tmp_path, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0 and not (done.stdout + done.stderr).strip(), done.stderr


def test_the_server_setup_guide_points_at_the_unit_files() -> None:
    guide = (ROOT / "docs" / "server-setup.md").read_text()
    for path in unit_files():
        assert f"deploy/systemd/{path.name}" in guide, path.name
    assert "[Service]" not in guide, "a unit copied inline: point at deploy/systemd/ instead"
