"""A loopback HTTP proxy in front of a real ``whirr server`` that can misbehave on cue.

Workers talk to the proxy's URL; a test makes the server look as it does during a
database restart (every request answered 503) or hung (requests whose path contains a
given part held open), then heals it. The proxy counts what it answered, so a test waits
on what a worker actually saw instead of sleeping. Everything is bounded: a held request
is let go after ``HOLD_LIMIT`` seconds at most, and ``close`` releases them all.
"""

from __future__ import annotations

import http.client
import threading
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit

#: The longest a held request stays held.
HOLD_LIMIT = 60.0
#: Headers not forwarded (hop-by-hop, or set again by the proxy).
_SKIP = {"host", "connection", "keep-alive", "transfer-encoding", "content-length"}


class HiccupProxy:
    """Forwards to ``upstream`` (``http://127.0.0.1:PORT``) until told otherwise."""

    def __init__(self, upstream: str) -> None:
        parts = urlsplit(upstream)
        self._upstream = (parts.hostname or "127.0.0.1", parts.port or 80)
        self._lock = threading.Condition()
        self._failing: int | None = None  # answer every request with this status
        self._hold: tuple[str, ...] = ()  # hold requests whose path contains one of these
        self._held_now = 0
        self._closed = False
        #: (path without query, status answered) -> how many times.
        self.answered: Counter[tuple[str, int]] = Counter()
        #: path -> how many requests were held.
        self.held: Counter[str] = Counter()
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: object) -> None:
                pass

            def _handle(self) -> None:
                proxy._serve(self)

            do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = _handle

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    # -- what the test does ------------------------------------------------------------
    def fail(self, status: int = 503) -> None:
        """Answer every request with ``status`` (a JSON ``detail``) until ``heal``."""
        with self._lock:
            self._failing = status

    def hold(self, *path_parts: str) -> None:
        """Hold requests whose path contains one of ``path_parts`` open until ``heal``."""
        with self._lock:
            self._hold = path_parts

    def heal(self) -> None:
        """Forward everything again (held requests go on to the server)."""
        with self._lock:
            self._failing = None
            self._hold = ()
            self._lock.notify_all()

    def count(self, path_end: str, status: int | None = None) -> int:
        """Requests answered whose path ends with ``path_end`` (with ``status``)."""
        with self._lock:
            return sum(
                n
                for (path, code), n in self.answered.items()
                if path.endswith(path_end) and (status is None or code == status)
            )

    def holding(self, path_end: str) -> int:
        """Requests held so far whose path ends with ``path_end``."""
        with self._lock:
            return sum(n for path, n in self.held.items() if path.endswith(path_end))

    def close(self) -> None:
        with self._lock:
            self._closed = True
            self._lock.notify_all()
        self._server.shutdown()
        self._server.server_close()

    # -- serving -----------------------------------------------------------------------
    def _serve(self, req: BaseHTTPRequestHandler) -> None:
        length = int(req.headers.get("Content-Length") or 0)
        body = req.rfile.read(length) if length else b""
        path = req.path.split("?", 1)[0]
        with self._lock:
            if any(part in path for part in self._hold):
                self.held[path] += 1
                self._lock.wait_for(
                    lambda: self._closed or not any(p in path for p in self._hold),
                    timeout=HOLD_LIMIT,
                )
            failing, closed = self._failing, self._closed
        if closed:
            req.close_connection = True
            return
        if failing is not None:
            self._answer(req, path, failing, {}, b'{"detail":"database unavailable (proxy)"}')
            return
        conn = http.client.HTTPConnection(*self._upstream, timeout=HOLD_LIMIT + 60)
        try:
            headers = {k: v for k, v in req.headers.items() if k.lower() not in _SKIP}
            conn.request(req.command, req.path, body=body or None, headers=headers)
            resp = conn.getresponse()
            data = resp.read()
            kept = {k: v for k, v in resp.getheaders() if k.lower() not in _SKIP}
            self._answer(req, path, resp.status, kept, data)
        except OSError:
            self._answer(req, path, 502, {}, b'{"detail":"upstream unreachable (proxy)"}')
        finally:
            conn.close()

    def _answer(
        self,
        req: BaseHTTPRequestHandler,
        path: str,
        status: int,
        headers: dict[str, str],
        body: bytes,
    ) -> None:
        with self._lock:
            self.answered[(path, status)] += 1
        try:
            req.send_response(status)
            if not any(k.lower() == "content-type" for k in headers):
                req.send_header("Content-Type", "application/json")
            for key, value in headers.items():
                req.send_header(key, value)
            req.send_header("Content-Length", str(len(body)))
            req.end_headers()
            req.wfile.write(body)
        except OSError:  # the worker gave up on the request (or exited)
            req.close_connection = True
