"""The live view: a loop that redraws on new events (and every interval, for log and
metric files), with keys read from the terminal in cbreak mode, so it works over SSH."""

from __future__ import annotations

import os
import select
import sys
import time
from types import TracebackType
from typing import Any

from rich.console import RenderableType

from whirr.watch.layout import plan, window
from whirr.watch.model import ACTIVE, WatchState
from whirr.watch.render import render
from whirr.watch.sources import WhirrSource

#: Seconds between looks at the log's head (one small ``status`` question each); a key
#: press is answered at once.
POLL = 0.25
UP = ("k", "\x1b[A", "\x1bOA")
DOWN = ("j", "\x1b[B", "\x1bOB")
PAGE_UP = ("\x1b[5~", "b")
PAGE_DOWN = ("\x1b[6~", " ")
FIRST = ("g", "\x1b[H", "\x1b[1~", "\x1bOH")
LAST = ("G", "\x1b[F", "\x1b[4~", "\x1bOF")
QUIT = ("q", "Q", "\x03")
#: Finished jobs read at a time once the selection walks past the ones listed.
MORE_FINISHED = 50
#: Most finished jobs ever listed (the rest are ``whirr status``'s).
FINISHED_CAP = 5000


class Watcher:
    """The watched state and the selection; redraw decisions live here, drawing does not."""

    def __init__(self, source: WhirrSource, selected: int | None = None) -> None:
        self.source = source
        self.selected = selected
        #: The first job row on screen, and how many rows show (set by each drawing).
        self.top = 0
        self.page = 10
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

    def _more_finished(self) -> bool:
        """Whether finished jobs exist beyond the ones listed."""
        finished = sum(n for s, n in self.state.counts.items() if s not in ACTIVE)
        listed = sum(1 for j in self.state.jobs if j.status not in ACTIVE)
        return listed < finished and self.source.finished_limit < FINISHED_CAP

    def move(self, step: int) -> None:
        """Select the job ``step`` rows below (negative: above) the selected one; going
        past the last finished job listed lists older ones."""
        ids = [j.id for j in self.state.jobs]
        if not ids:
            return
        index = ids.index(self.selected) if self.selected in ids else 0
        if index + step >= len(ids) and self._more_finished():
            wanted = index + step - len(ids) + 1
            grown = self.source.finished_limit + max(MORE_FINISHED, wanted)
            self.source.finished_limit = min(FINISHED_CAP, grown)
            self.refresh()
            ids = [j.id for j in self.state.jobs]
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
        elif key in PAGE_UP:
            self.move(-self.page)
        elif key in PAGE_DOWN:
            self.move(self.page)
        elif key in FIRST:
            self.move(-len(self.state.jobs))
        elif key in LAST:
            self.move(len(self.state.jobs))
        return True

    def frame(self, width: int, height: int, log_lines: int) -> RenderableType:
        """The frame for a ``width`` x ``height`` screen, scrolled (as little as it
        takes) to keep the selected job on it."""
        layout = plan(self.state, height, log_lines)
        ids = [j.id for j in self.state.jobs]
        rows = layout.job_rows or max(1, len(ids))
        index = ids.index(self.selected) if self.selected in ids else 0
        self.top = window(self.top, index, rows, len(ids))
        self.page = max(1, rows - 1)
        return render(self.state, log_lines, width=width, height=height, top=self.top)


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
        if key == "\x1b":  # an escape sequence arrives in one burst: ESC [ 6 ~, ESC O A
            while select.select([self.fd], [], [], 0.01)[0]:
                key += os.read(self.fd, 1).decode(errors="replace")
                if (len(key) >= 3 and (key[-1].isalpha() or key[-1] == "~")) or len(key) >= 6:
                    break
        return key


def run(watcher: Watcher, console: Any, interval: float, log_lines: int = 10) -> None:
    """Show the live view until ``q`` or Ctrl+C; a resized terminal is redrawn."""
    from rich.live import Live

    def draw() -> RenderableType:
        width, height = console.size
        return watcher.frame(width, height, log_lines)

    size = console.size
    next_full = time.monotonic() + interval
    with (
        Keys() as keys,
        Live(
            draw(),
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
            if console.size != size:
                size, changed = console.size, True
            if changed:
                live.update(draw(), refresh=True)
