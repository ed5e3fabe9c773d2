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
    gc.disable()
    # httpcore imports trio when it is installed (selenium brings it), only to offer its
    # async primitives under trio: ~45 ms of every remote command. No whirr command runs
    # under trio, and no user code runs in this process, so here it counts as absent.
    sys.modules.setdefault("trio", None)  # type: ignore[arg-type]
    from whirr.cli.main import main as run

    run()
