"""Wake-ups when another process commits to the database file.

A commit in WAL mode writes frames to ``<db>-wal`` with ``write(2)``, which inotify reports
as IN_MODIFY on the directory. Waiting on an inotify descriptor with ``select`` costs
nothing while idle and wakes within microseconds of a commit, where polling would either
burn CPU or add latency. (watchfiles polls its change set every ``step_ms`` while holding
the GIL, so it is kept for following log files, not for the hot wake-up path.) Where
inotify is not available the waiter falls back to short sleeps and the caller re-checks.
"""

from __future__ import annotations

import os
import select
import time

_IN_MODIFY = 0x00000002
_IN_CREATE = 0x00000100
_IN_MOVED_TO = 0x00000080
_IN_NONBLOCK = 0o4000
_IN_CLOEXEC = 0o2000000
_FALLBACK_SLEEP = 0.05
_SETTLE = 0.001


class DirectoryWatcher:
    """Block until something in ``directory`` is modified, or a timeout passes."""

    def __init__(self, directory: str) -> None:
        self._fd = -1
        try:
            import ctypes  # here, not at the top: commands that never wait skip its import

            libc = ctypes.CDLL(None, use_errno=True)  # our own symbols include libc's
            fd = libc.inotify_init1(_IN_NONBLOCK | _IN_CLOEXEC)
            if fd >= 0:
                mask = _IN_MODIFY | _IN_CREATE | _IN_MOVED_TO
                if libc.inotify_add_watch(fd, os.fsencode(directory), mask) >= 0:
                    self._fd = fd
                else:
                    os.close(fd)
        except (OSError, AttributeError):
            self._fd = -1

    @property
    def native(self) -> bool:
        """True when inotify backs this watcher (False: polling fallback)."""
        return self._fd >= 0

    def arm(self) -> None:
        """Forget changes seen so far: call before re-checking, then ``wait``."""
        if self._fd >= 0:
            try:
                while os.read(self._fd, 65536):
                    pass
            except BlockingIOError:
                pass

    def wait(self, timeout: float) -> None:
        """Return when a change arrived since ``arm`` or after ``timeout`` seconds."""
        if self._fd < 0:
            time.sleep(min(timeout, _FALLBACK_SLEEP))
            return
        if select.select([self._fd], [], [], max(0.0, timeout))[0]:
            # A commit writes its WAL frames one write(2) at a time, each an event: let it
            # finish so the caller looks once per commit, not once per page (that was ~7
            # head queries per commit, on the worker's own commits too).
            time.sleep(_SETTLE)

    def close(self) -> None:
        """Release the inotify descriptor."""
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1
