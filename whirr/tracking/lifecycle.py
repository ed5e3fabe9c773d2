"""Truthful ends for runs the script never finished itself.

- SIGTERM (a worker cancelling, a scheduler pre-empting): open runs end ``killed``, then
  the previous handler runs, or, when it was the default one, the process dies by the
  signal exactly as it would have without whirr (so the parent sees the signal).
- An uncaught exception: ``sys.excepthook`` notes it, and the exit hook ends open runs
  ``failed`` (``killed`` for Ctrl+C).
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
import contextlib
import os
import signal
import sys
import threading
from types import FrameType, TracebackType
from typing import Any, Protocol


class Finishable(Protocol):
    """What this module needs from a run."""

    def _end(self, status: Any, error: str | None, *, in_signal: bool = False) -> None: ...


_lock = threading.RLock()
_open: list[Finishable] = []
_installed = False
_previous_sigterm: Any = None
_previous_excepthook: Any = None
_uncaught: BaseException | None = None


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
    if threading.current_thread() is not threading.main_thread():
        return
    current = signal.getsignal(signal.SIGTERM)
    if current is signal.SIG_DFL or (callable(current) and current is not _on_sigterm):
        _previous_sigterm = current
        signal.signal(signal.SIGTERM, _on_sigterm)


def _after_fork_in_child() -> None:
    """A forked child (a DataLoader worker) inherits the open runs, but they are its
    parent's: forget them, and give SIGTERM back its previous handler so the child
    behaves exactly as it would without whirr (a SIGTERM sent to the whole process group
    reaches every child too). A run the child starts itself installs the hooks again."""
    _open.clear()
    if signal.getsignal(signal.SIGTERM) is _on_sigterm:
        previous = signal.SIG_DFL if _previous_sigterm is None else _previous_sigterm
        # ValueError: forked from a thread other than the main one, where signal() is refused.
        with contextlib.suppress(ValueError):
            signal.signal(signal.SIGTERM, previous)


def _end_all(status: str, error: str | None, *, in_signal: bool = False) -> None:
    with _lock:
        runs = list(reversed(_open))
    for run in runs:
        try:
            run._end(status, error, in_signal=in_signal)
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


def _at_exit() -> None:
    status, error = outcome_of(_uncaught)
    _end_all(status, error)
