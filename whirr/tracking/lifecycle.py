"""Truthful ends for runs the script never finished itself.

- SIGTERM (a worker cancelling, a scheduler pre-empting): open runs end ``killed``, then
  the previous handler runs, or, when it was the default one, the process dies by the
  signal exactly as it would have without whirr (so the parent sees the signal).
- An uncaught exception: ``sys.excepthook`` notes it, and the exit hook ends open runs
  ``failed`` (``killed`` for Ctrl+C).
- ``sys.exit(n)`` (or the ``exit``/``quit`` builtins) from the main thread: SystemExit
  never reaches ``sys.excepthook``, so those functions are wrapped to note the status,
  and the exit hook ends open runs ``failed`` ("exited with SystemExit(n)") for a
  non-zero or string status, ``completed`` for 0/None, with the exit code the process
  exits with (1 for a string). What this cannot see: a bare
  ``raise SystemExit(n)`` (recorded ``completed``), and a SystemExit the script catches
  and then ends normally without another ``sys.exit`` (recorded ``failed``: the last
  status asked for); a ``with whirr.init()`` block sees the exception itself and is
  exact.
- A normal interpreter exit (``atexit``): open runs end ``completed``.
- A hard death (SIGKILL, ``os._exit``, a segfault) runs none of this: a worker records
  the job's end, and ``whirr runs`` shows a direct run whose pid is gone as ``crashed``.

Forked children forget the open runs: only the process that started a run ends it.

The SIGTERM handler is installed only from the main thread (Python allows no other) and
only over the default handler or a Python one; a handler set by C code or ``SIG_IGN`` is
left alone.
"""

from __future__ import annotations

import atexit
import builtins
import contextlib
import os
import signal
import sys
import threading
from types import FrameType, TracebackType
from typing import Any, NoReturn, Protocol


class Finishable(Protocol):
    """What this module needs from a run."""

    def _end(
        self,
        status: Any,
        error: str | None,
        *,
        in_signal: bool = False,
        exit_code: int | None = None,
    ) -> None: ...


_lock = threading.RLock()
_open: list[Finishable] = []
_installed = False
_previous_sigterm: Any = None
_previous_excepthook: Any = None
_uncaught: BaseException | None = None
#: The SystemExit the main thread last asked for through a wrapped exit function.
_exit_request: SystemExit | None = None
_original_sys_exit: Any = None


def track(run: Finishable) -> None:
    """Watch ``run`` until it finishes (installs the hooks on first use)."""
    with _lock:
        _open.append(run)
        _install()


def untrack(run: Finishable) -> None:
    """Stop watching ``run`` (it finished)."""
    with _lock:
        if run in _open:
            _open.remove(run)


def _install() -> None:
    """Install the hooks that are not in place yet (idempotent; again after a fork)."""
    global _installed, _previous_excepthook, _previous_sigterm
    if not _installed:  # atexit and fork hooks survive a fork: register them once
        _installed = True
        atexit.register(_at_exit)
        os.register_at_fork(after_in_child=_after_fork_in_child)
    if sys.excepthook is not _excepthook:
        _previous_excepthook = sys.excepthook
        sys.excepthook = _excepthook
    _wrap_exits()
    if threading.current_thread() is not threading.main_thread():
        return
    current = signal.getsignal(signal.SIGTERM)
    if current is signal.SIG_DFL or (callable(current) and current is not _on_sigterm):
        _previous_sigterm = current
        signal.signal(signal.SIGTERM, _on_sigterm)


def _note_exit(status: object) -> None:
    """Remember the status an exit function was called with (main thread only: in any
    other thread SystemExit ends just that thread)."""
    global _exit_request
    if threading.current_thread() is threading.main_thread():
        _exit_request = SystemExit(status)


def _sys_exit(status: object = None, /) -> NoReturn:
    _note_exit(status)
    _original_sys_exit(status)
    raise SystemExit(status)  # not reached: the original raises it


class _NotingQuitter:
    """``exit``/``quit`` as the ``site`` module made them, noting the status first."""

    def __init__(self, quitter: Any) -> None:
        self._quitter = quitter

    def __repr__(self) -> str:
        return repr(self._quitter)

    def __call__(self, code: object = None) -> None:
        _note_exit(code)
        self._quitter(code)


def _wrap_exits() -> None:
    """Wrap ``sys.exit`` and the ``exit``/``quit`` builtins (once each; a later
    replacement by someone else is left alone)."""
    global _original_sys_exit
    if _original_sys_exit is None:
        _original_sys_exit = sys.exit
        sys.exit = _sys_exit
    for name in ("exit", "quit"):
        quitter = getattr(builtins, name, None)  # absent under python -S
        if quitter is not None and not isinstance(quitter, _NotingQuitter):
            setattr(builtins, name, _NotingQuitter(quitter))


def _after_fork_in_child() -> None:
    """A forked child (a DataLoader worker) inherits the open runs, but they are its
    parent's: forget them, and give SIGTERM back its previous handler so the child
    behaves exactly as it would without whirr (a SIGTERM sent to the whole process group
    reaches every child too). A run the child starts itself installs the hooks again."""
    global _exit_request
    _open.clear()
    _exit_request = None  # the parent's, not this child's
    if signal.getsignal(signal.SIGTERM) is _on_sigterm:
        previous = signal.SIG_DFL if _previous_sigterm is None else _previous_sigterm
        # ValueError: forked from a thread other than the main one, where signal() is refused.
        with contextlib.suppress(ValueError):
            signal.signal(signal.SIGTERM, previous)


def _end_all(
    status: str, error: str | None, *, in_signal: bool = False, exit_code: int | None = None
) -> None:
    with _lock:
        runs = list(reversed(_open))
    for run in runs:
        try:
            run._end(status, error, in_signal=in_signal, exit_code=exit_code)
        except Exception as exc:  # never let one run's failure hide the others' ends
            print(f"whirr: could not record the end of a run: {exc}", file=sys.stderr)


def _on_sigterm(signum: int, frame: FrameType | None) -> None:
    _end_all("killed", "terminated by SIGTERM", in_signal=True)
    previous = _previous_sigterm
    if callable(previous):
        previous(signum, frame)
        return
    # The default action: die by the signal, so whoever waits on us sees SIGTERM.
    signal.signal(signum, signal.SIG_DFL)
    os.kill(os.getpid(), signum)


def _excepthook(
    exc_type: type[BaseException], exc: BaseException, tb: TracebackType | None
) -> None:
    global _uncaught
    _uncaught = exc
    hook = _previous_excepthook or sys.__excepthook__
    hook(exc_type, exc, tb)


def outcome_of(exc: BaseException | None) -> tuple[str, str | None]:
    """The status and error a run ends with when ``exc`` stopped it (None: it did not)."""
    if exc is None:
        return "completed", None
    if isinstance(exc, KeyboardInterrupt):
        return "killed", "interrupted (KeyboardInterrupt)"
    if isinstance(exc, SystemExit):
        code = exc.code
        if code is None or code == 0:
            return "completed", None
        return "failed", f"exited with SystemExit({code!r})"
    return "failed", f"{type(exc).__name__}: {exc}"


def exit_code_of(exc: BaseException | None) -> int | None:
    """The exit status a SystemExit makes the interpreter exit with (0 for None, 1 for a
    message, the low 8 bits of a number, as the OS keeps them); None for anything else."""
    if not isinstance(exc, SystemExit):
        return None
    code = exc.code
    if code is None:
        return 0
    if isinstance(code, int):
        return code & 0xFF
    return 1


def _at_exit() -> None:
    ending = _uncaught if _uncaught is not None else _exit_request
    status, error = outcome_of(ending)
    _end_all(status, error, exit_code=exit_code_of(ending))
