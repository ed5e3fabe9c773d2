"""Wake-ups for ``PostgresStore.wait``: one LISTEN connection per store, on its own thread.

Every append transaction calls ``pg_notify(channel, head)``; PostgreSQL delivers the
notification when (and only if) that transaction commits, in commit order. The listener
thread records the highest position announced and wakes every waiter at once, so an idle
worker learns of a submit within a round trip instead of polling.

Notifications are a wake-up, never the source of truth: a waiter always confirms against
the log, and whenever the LISTEN connection is down (server restart, network cut, a
terminated backend) waiters fall back to polling the head every ``POLL_INTERVAL`` while
the thread reconnects with backoff. An idle connection is kept alive with ``SELECT 1``
every ``KEEPALIVE`` seconds (plus TCP keepalives), which also notices a dead peer that
would otherwise leave the listener waiting forever on a silent socket.
"""

from __future__ import annotations

import contextlib
import threading
import time
import uuid
from collections.abc import Callable

import psycopg
from psycopg import sql

from whirr.store.postgres.schema import Q

#: Seconds between polls of the head while the LISTEN connection is down.
POLL_INTERVAL = 0.25
#: Seconds between re-checks of the head even while listening (a lost notification
#: costs at most this much latency).
RECHECK_INTERVAL = 5.0
#: Idle seconds before the listener sends ``SELECT 1``.
KEEPALIVE = 10.0
#: Longest stretch the thread blocks on the socket before looking at its stop flag.
_SLICE = 1.0
_MAX_BACKOFF = 5.0
_CONNECT_WAIT = 5.0
_CONNECT_KWARGS = {
    "autocommit": True,
    "connect_timeout": 10,
    "application_name": "whirr-listen",
    "keepalives": 1,
    "keepalives_idle": 30,
    "keepalives_interval": 10,
    "keepalives_count": 3,
}


class Listener:
    """LISTENs on ``channel`` in a daemon thread and wakes ``wait`` callers."""

    def __init__(self, url: str, channel: str) -> None:
        self._url = url
        self._channel = channel
        # Each listener also listens on a channel of its own, so ``close`` can wake it
        # at once with a notification instead of waiting for its socket timeout.
        self.stop_channel = f"whirr_stop_{uuid.uuid4().hex}"
        self._changed = threading.Condition()
        self._generation = 0  # bumped on every notification and connection change
        self._announced = 0  # highest position any notification carried
        self._listening = False
        self._attempted = False  # the first connection attempt is over (either way)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="whirr-listen", daemon=True)
        self._thread.start()

    @property
    def listening(self) -> bool:
        """True while the LISTEN connection is up."""
        return self._listening

    def wait(self, after: int, timeout: float, head: Callable[[], int]) -> bool:
        """Block until the log holds a position beyond ``after`` (True) or ``timeout`` passes.

        ``head`` reads the log's head; it is called once up front and after every
        connection change or re-check interval, never once per notification.
        """
        deadline = time.monotonic() + timeout
        with self._changed:
            # Be listening before the first look at the head: a commit in between would
            # otherwise go unnoticed until the next re-check.
            self._changed.wait_for(lambda: self._attempted, min(timeout, _CONNECT_WAIT))
        while True:
            with self._changed:
                generation = self._generation
                if self._announced > after:
                    return True
                listening = self._listening
            if head() > after:
                return True
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return False
            step = RECHECK_INTERVAL if listening else POLL_INTERVAL
            with self._changed:
                if self._generation == generation:
                    self._changed.wait(min(remaining, step))

    def close(self, wake: Callable[[str], None] | None = None, timeout: float = 2.0) -> None:
        """Stop the thread; ``wake(stop_channel)`` should send it a notification."""
        self._stop.set()
        if wake is not None and self._listening:
            # If the notification cannot be sent, the thread still stops within a slice.
            with contextlib.suppress(Exception):
                wake(self.stop_channel)
        self._thread.join(timeout)

    # -- the thread ----------------------------------------------------------
    def _set(self, *, listening: bool | None = None, position: int | None = None) -> None:
        with self._changed:
            if listening is not None:
                self._listening = listening
                self._attempted = True
            if position is not None and position > self._announced:
                self._announced = position
            self._generation += 1
            self._changed.notify_all()

    def _run(self) -> None:
        backoff = 0.1
        while not self._stop.is_set():
            try:
                with psycopg.connect(self._url, **_CONNECT_KWARGS) as conn:  # type: ignore[arg-type]
                    for channel in (self._channel, self.stop_channel):
                        conn.execute(sql.SQL(Q["listen"]).format(channel=sql.Identifier(channel)))
                    self._set(listening=True)
                    backoff = 0.1
                    self._listen(conn)
            except psycopg.Error:
                pass  # reconnect below; waiters poll meanwhile
            finally:
                self._set(listening=False)
            self._stop.wait(backoff)
            backoff = min(backoff * 2, _MAX_BACKOFF)

    def _listen(self, conn: psycopg.Connection[tuple[object, ...]]) -> None:
        quiet_since = time.monotonic()
        while not self._stop.is_set():
            for note in conn.notifies(timeout=_SLICE):
                if note.channel == self.stop_channel:
                    return
                quiet_since = time.monotonic()
                try:
                    self._set(position=int(note.payload))
                except ValueError:
                    self._set()  # not ours to parse; waiters re-check the head
            if time.monotonic() - quiet_since >= KEEPALIVE:
                conn.execute(Q["keepalive"])
                quiet_since = time.monotonic()
