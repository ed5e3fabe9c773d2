"""The ``whirr`` command line."""

from __future__ import annotations

import gc
import sys


def main() -> None:
    """Console-script entry point.

    A command's start-up is almost all imports (click, msgspec, apsw, whirr), which
    allocate tens of thousands of objects and no garbage; the cyclic collector would still
    scan them several times over. It is off until the command's module is loaded; then
    what start-up allocated is frozen out of future collections and collection resumes
    (see ``LazyGroup.get_command``), so long-running commands such as ``whirr worker``
    collect as usual. Together about 10% of a ``whirr submit``.
    """
    if sys.version_info < (3, 11):  # noqa: UP036 (ruff targets 3.11; pip installs on 3.10)
        refuse_old_python()
    gc.disable()
    # httpcore imports trio when it is installed (selenium brings it), only to offer its
    # async primitives under trio: ~45 ms of every remote command. No whirr command runs
    # under trio, and no user code runs in this process, so here it counts as absent.
    sys.modules.setdefault("trio", None)  # type: ignore[arg-type]
    from whirr.cli.main import main as run

    run()


def refuse_old_python() -> None:
    """The command line, server and dashboard need Python 3.11+; the tracking library
    (``import whirr``) also runs on 3.10, so an install there is possible and its
    ``whirr`` command says so in one line instead of failing on a 3.11-only name."""
    version = ".".join(str(part) for part in sys.version_info[:3])
    sys.stderr.write(
        "Error: the whirr command (CLI, server, dashboard) needs Python 3.11+; this is "
        f"Python {version} ({sys.executable}), where only the tracking library "
        "(import whirr) works\n"
    )
    sys.exit(1)
