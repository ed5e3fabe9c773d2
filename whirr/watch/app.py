"""The live view: a loop that redraws on new events (and every interval, for log and
metric files), with keys read from the terminal in cbreak mode, so it works over SSH."""

from __future__ import annotations

import os
import select
import sys
import time
from types import TracebackType
from typing import Any

from whirr.watch.model import WatchState
from whirr.watch.sources import WhirrSource

#: Seconds between looks at the log's head (one small ``status`` question each); a key
#: press is answered at once.
POLL = 0.25
UP = ("k", "\x1b[A", "\x1bOA")
DOWN = ("j", "\x1b[B", "\x1bOB")
QUIT = ("q", "Q", "\x03")


class Watcher:
    """The watched state and the selection; redraw decisions live here, drawing does not."""

    def __init__(self, source: WhirrSource, selected: int | None = None) -> None:
        self.source = source
        self.selected = selected
        self.state: WatchState = self.refresh()

    @property
    def seen(self) -> int:
        """The log head the shown state was taken at."""
        return self.state.position

    def refresh(self) -> WatchState:
        """Take a fresh snapshot."""
        self.state = self.source.snapshot(self.selected)
        self.selected = self.state.selected
        return self.state

    def poll(self) -> bool:
        """Refresh if the log moved since the last snapshot; True when it did."""
        if self.source.position() == self.seen:
            return False
        self.refresh()
        return True

    def move(self, step: int) -> None:
        """Select the job ``step`` rows below (negative: above) the selected one."""
        ids = [j.id for j in self.state.jobs]
        if not ids:
            return
        index = ids.index(self.selected) if self.selected in ids else 0
        self.selected = ids[max(0, min(len(ids) - 1, index + step))]
        self.refresh()

    def handle(self, key: str) -> bool:
        """Act on a key; False means quit."""
        if key in QUIT:
            return False
        if key in UP:
            self.move(-1)
        elif key in DOWN:
            self.move(1)
        return True


class Keys:
    """Single key presses from a terminal on stdin (cbreak: no Enter needed, no echo).
    Without a terminal, ``read`` just waits."""

    def __init__(self) -> None:
        self.fd = sys.stdin.fileno() if sys.stdin is not None and sys.stdin.isatty() else None
        self._saved: Any = None

    def __enter__(self) -> Keys:
        if self.fd is not None:
            import termios
            import tty

            self._saved = termios.tcgetattr(self.fd)
            tty.setcbreak(self.fd)
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self.fd is not None and self._saved is not None:
            import termios

            termios.tcsetattr(self.fd, termios.TCSADRAIN, self._saved)

    def read(self, timeout: float) -> str | None:
        """One key (arrow keys as their escape sequence), or None after ``timeout``."""
        if self.fd is None:
            time.sleep(timeout)
            return None
        ready, _, _ = select.select([self.fd], [], [], timeout)
        if not ready:
            return None
        key = os.read(self.fd, 1).decode(errors="replace")
        if key == "\x1b":  # an escape sequence arrives in one burst
            while select.select([self.fd], [], [], 0.01)[0]:
                key += os.read(self.fd, 1).decode(errors="replace")
                if len(key) >= 3:
                    break
        return key


def run(watcher: Watcher, console: Any, interval: float, log_lines: int = 10) -> None:
    """Show the live view until ``q`` or Ctrl+C."""
    from rich.live import Live

    from whirr.watch.render import render

    next_full = time.monotonic() + interval
    with (
        Keys() as keys,
        Live(
            render(watcher.state, log_lines),
            console=console,
            screen=True,
            auto_refresh=False,
            redirect_stdout=False,
        ) as live,
    ):
        while True:
            key = keys.read(POLL)
            changed = False
            if key is not None:
                if not watcher.handle(key):
                    return
                changed = True
            if time.monotonic() >= next_full:
                watcher.refresh()  # files (log, metrics) and the clock move without events
                next_full = time.monotonic() + interval
                changed = True
            elif watcher.poll():
                changed = True
            if changed:
                live.update(render(watcher.state, log_lines), refresh=True)
