"""``whirr sweep --check``: does the program take the flags the sweep would pass?

A sweep passes ``--<name> value`` for each parameter; a program that spells an option
otherwise (``--batch-size`` for a ``batch_size`` key) fails every job the same way. The
check runs ``program --help`` once, in the sweep's working directory with a bounded
timeout, reads the options its help lists, and names each flag it does not list with
the closest one it does.
"""

from __future__ import annotations

import difflib
import re
import subprocess
from collections.abc import Sequence

import msgspec

#: How long ``program --help`` may take (seconds): an import-heavy script needs a few.
HELP_TIMEOUT = 30.0
#: An option as help texts write it: ``--lr``, ``--batch-size``, ``[--seed SEED]``,
#: ``--amp/--no-amp``, ``--out=FILE``.
_OPTION = re.compile(r"(?<![\w-])--[A-Za-z0-9][\w.-]*")


class Unknown(msgspec.Struct, frozen=True):
    """A flag the sweep passes that the program's help does not list."""

    flag: str
    #: The listed option it most likely means (None: nothing close).
    suggestion: str | None = None


class FlagCheck(msgspec.Struct, frozen=True):
    """What ``program --help`` said about the sweep's flags."""

    command: list[str]
    #: Why the check could not be made (the program has no --help, failed, timed out);
    #: None when its help was read.
    problem: str | None = None
    listed: list[str] = []
    unknown: list[Unknown] = []


def listed_options(help_text: str) -> list[str]:
    """The ``--options`` a help text names, in order, once each."""
    found: dict[str, None] = {}
    for match in _OPTION.finditer(help_text):
        found[match.group(0).rstrip(".-")] = None
    return list(found)


def closest(flag: str, listed: Sequence[str]) -> str | None:
    """The listed option ``flag`` most likely means: the same but for ``_``/``-`` and
    case, else a close spelling."""
    key = _normal(flag)
    for option in listed:
        if _normal(option) == key:
            return option
    near = difflib.get_close_matches(flag, list(listed), n=1, cutoff=0.75)
    return near[0] if near else None


def _normal(flag: str) -> str:
    return flag.lower().replace("_", "-")


def compare(command: list[str], help_text: str, flags: Sequence[str]) -> FlagCheck:
    """The check of ``flags`` against the options ``help_text`` lists. Pure."""
    listed = listed_options(help_text)
    if not listed:
        return FlagCheck(
            command, problem="its --help output lists no --options (does it take --help?)"
        )
    known = set(listed)
    unknown = [Unknown(f, closest(f, listed)) for f in flags if f not in known]
    return FlagCheck(command, listed=listed, unknown=unknown)


def check_flags(
    argv: Sequence[str], flags: Sequence[str], workdir: str, timeout: float = HELP_TIMEOUT
) -> FlagCheck:
    """Run ``argv --help`` once in ``workdir`` (at most ``timeout`` seconds, no input)
    and check ``flags`` against the options it lists."""
    command = [*argv, "--help"]
    try:
        done = subprocess.run(
            command,
            cwd=workdir,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            timeout=timeout,
            check=False,
        )
    except subprocess.TimeoutExpired:
        return FlagCheck(command, problem=f"it did not finish within {timeout:g}s")
    except OSError as exc:
        return FlagCheck(command, problem=f"it could not start: {exc.strerror or exc}")
    text = (done.stdout + b"\n" + done.stderr).decode("utf-8", "replace")
    if done.returncode != 0:
        last = next((line for line in reversed(text.splitlines()) if line.strip()), "")
        said = f": {last.strip()[:200]}" if last else ""
        return FlagCheck(command, problem=f"it exited {done.returncode} (no --help?){said}")
    return compare(command, text, flags)
