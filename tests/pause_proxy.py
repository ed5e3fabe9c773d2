"""A loopback TCP proxy that can be paused, throttled and re-pointed: a network partition,
a slow link and a server that moved, for the shipping tests (issue 16).

Unlike ``hiccup_proxy`` (an HTTP proxy that answers for the server), this one forwards
bytes and knows nothing of HTTP, so streamed and chunked uploads pass through untouched.

- ``pause()`` is a partition as TCP sees it: no byte moves in either direction on open
  connections and new connections wait, unanswered, in the listen backlog. ``resume()``
  lets everything go on, late bytes included (a request a client gave up on may still
  reach the server, as after a real partition heals).
- ``throttle(bytes_per_second)`` slows what clients send upstream (all connections
  together), so a test can observe an upload while it is under way.
- ``point_at(port)`` sends new connections to another upstream (a restarted server).

Everything is bounded: a pause holds at most ``PAUSE_LIMIT`` seconds, and ``close``
releases every thread.
"""

from __future__ import annotations

import contextlib
import socket
import threading
import time

#: The longest a pause holds traffic, whatever the test does.
PAUSE_LIMIT = 120.0
_CHUNK = 64 * 1024


class PauseProxy:
    """Forwards ``127.0.0.1:<port>`` to ``127.0.0.1:<upstream_port>``."""

    def __init__(self, upstream_port: int) -> None:
        self._upstream_port = upstream_port
        self._cond = threading.Condition()
        self._paused = False
        self._closed = False
        self._rate: float | None = None
        self._budget_at = time.monotonic()  # when the throttle's sent bytes are paid for
        self._sockets: set[socket.socket] = set()
        #: Bytes sent upstream so far (all connections).
        self.forwarded = 0
        self._listener = socket.create_server(("127.0.0.1", 0), backlog=128)
        self.port = int(self._listener.getsockname()[1])
        self.url = f"http://127.0.0.1:{self.port}"
        self._accepter = threading.Thread(target=self._accept_loop, daemon=True)
        self._accepter.start()

    # -- what the test does ------------------------------------------------------------
    def pause(self) -> None:
        with self._cond:
            self._paused = True

    def resume(self) -> None:
        with self._cond:
            self._paused = False
            self._cond.notify_all()

    def throttle(self, bytes_per_second: float | None) -> None:
        """Cap what clients send upstream; None lifts the cap."""
        with self._cond:
            self._rate = bytes_per_second
            self._budget_at = time.monotonic()

    def point_at(self, upstream_port: int) -> None:
        """New connections go to ``upstream_port`` (open ones stay where they are)."""
        with self._cond:
            self._upstream_port = upstream_port

    def drop_connections(self) -> None:
        """Close every open connection (both ends): a firewall that lost its state."""
        with self._cond:
            sockets = list(self._sockets)
        for sock in sockets:
            _close(sock)

    def close(self) -> None:
        with self._cond:
            self._closed = True
            self._paused = False
            self._cond.notify_all()
        _close(self._listener)
        self.drop_connections()
        self._accepter.join(timeout=5)

    # -- forwarding --------------------------------------------------------------------
    def _wait_open(self) -> bool:
        """Block while paused (bounded); False once closed."""
        with self._cond:
            self._cond.wait_for(lambda: self._closed or not self._paused, timeout=PAUSE_LIMIT)
            return not self._closed

    def _accept_loop(self) -> None:
        while self._wait_open():
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            if not self._wait_open():  # paused between accept and connect: wait it out
                _close(client)
                return
            with self._cond:
                port = self._upstream_port
            try:
                upstream = socket.create_connection(("127.0.0.1", port), timeout=10)
                upstream.settimeout(None)
            except OSError:
                _close(client)  # the server is down: the client sees a reset, as it would
                continue
            with self._cond:
                self._sockets.update((client, upstream))
            pair = _Pair(client, upstream)
            for src, dst, up in ((client, upstream, True), (upstream, client, False)):
                threading.Thread(target=self._pump, args=(pair, src, dst, up), daemon=True).start()

    def _pump(self, pair: _Pair, src: socket.socket, dst: socket.socket, up: bool) -> None:
        try:
            while self._wait_open():
                data = src.recv(self._chunk() if up else _CHUNK)
                if not self._wait_open():
                    break
                if not data:
                    dst.shutdown(socket.SHUT_WR)
                    break
                if up:
                    self._pay(len(data))
                dst.sendall(data)
                if up:
                    with self._cond:
                        self.forwarded += len(data)
        except OSError:  # a reset on one side ends the connection on both
            _close(pair.client)
            _close(pair.upstream)
        if pair.one_done():
            for sock in (pair.client, pair.upstream):
                _close(sock)
                with self._cond:
                    self._sockets.discard(sock)

    def _chunk(self) -> int:
        with self._cond:
            rate = self._rate
        return _CHUNK if rate is None else max(1024, min(_CHUNK, int(rate / 50)))

    def _pay(self, size: int) -> None:
        """Sleep long enough that the throttle's rate holds (a shared token bucket)."""
        with self._cond:
            if self._rate is None:
                return
            now = time.monotonic()
            self._budget_at = max(self._budget_at, now) + size / self._rate
            delay = self._budget_at - now
        if delay > 0:
            time.sleep(min(delay, 5.0))


class _Pair:
    """Two sockets forwarded both ways; closed once both directions are done."""

    def __init__(self, client: socket.socket, upstream: socket.socket) -> None:
        self.client, self.upstream = client, upstream
        self._lock = threading.Lock()
        self._done = 0

    def one_done(self) -> bool:
        """Count one finished direction; True for the second."""
        with self._lock:
            self._done += 1
            return self._done == 2


def _close(sock: socket.socket) -> None:
    with contextlib.suppress(OSError):
        sock.shutdown(socket.SHUT_RDWR)
    sock.close()
