"""Static files of the dashboard: its own CSS/JS and plotly.js from the installed
``plotly`` Python package (no CDN: the dashboard works offline).

Files are read and gzipped once (``warm`` does it in the background when the server
starts, so the first page does not wait for 4.8 MB of plotly.js to compress) and served
from memory with an ETag; plotly.js shrinks to about 1.5 MB on the wire, and is kept
gzipped in the dashboard's cache directory for the next start. Pages link every
file with ``?v=`` and a fingerprint of the shipped files and of plotly.js, so a browser may
keep them for a year without asking again, and still fetches a new release at once.
"""

from __future__ import annotations

import contextlib
import functools
import gzip
import hashlib
import logging
import os
import threading
import zlib
from dataclasses import dataclass
from pathlib import Path

from sanic import HTTPResponse, Request

from whirr.filemodes import private_dir, write_private
from whirr.services.errors import NotFound, WhirrError

STATIC = Path(__file__).parent / "static"
TYPES = {
    ".css": "text/css; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".svg": "image/svg+xml",
}
PLOTLY = "vendor/plotly.min.js"
#: For a URL carrying the current fingerprint: its bytes can never change.
IMMUTABLE = "public, max-age=31536000, immutable"


class PlotlyMissing(WhirrError):
    """plotly is not installed, so charts cannot be drawn."""

    status = 503


@dataclass(frozen=True)
class Asset:
    """One file, ready to send."""

    body: bytes
    gzipped: bytes
    etag: str
    content_type: str


log = logging.getLogger("whirr.dashboard")
_cache: dict[str, Asset] = {}
#: One lock per name: a request for plotly.js while ``warm`` compresses it waits for that
#: work instead of repeating it, and never holds up the small files.
_locks: dict[str, threading.Lock] = {}


def plotly_path() -> Path:
    """Where the installed plotly package keeps its minified plotly.js."""
    try:
        import plotly
    except ImportError:
        raise PlotlyMissing("charts need plotly: pip install 'whirr[dashboard]'") from None
    path = Path(plotly.__file__).parent / "package_data" / "plotly.min.js"
    if not path.is_file():
        raise PlotlyMissing(f"plotly is installed but {path} is missing")
    return path


def _locate(name: str) -> Path:
    if name == PLOTLY:
        return plotly_path()
    # Only names we ship: a fixed directory listing, never a path from the request.
    shipped = {p.name: p for p in STATIC.iterdir() if p.suffix in TYPES}
    path = shipped.get(name)
    if path is None:
        raise NotFound(f"no static file {name!r}")
    return path


def load(name: str, keep_in: Path | None = None) -> Asset:
    """The asset called ``name`` (``dashboard.css``, ``vendor/plotly.min.js``...);
    plotly.js gzipped is kept in (and taken from) ``keep_in`` when given."""
    asset = _cache.get(name)
    if asset is not None:
        return asset
    path = _locate(name)  # before taking a lock: unknown names must not create locks
    with _locks.setdefault(name, threading.Lock()):
        asset = _cache.get(name)
        if asset is None:
            body = path.read_bytes()
            digest = hashlib.sha256(body).hexdigest()[:20]
            kept = keep_in / f"plotly-{digest}.js.gz" if keep_in and name == PLOTLY else None
            asset = _cache[name] = Asset(
                body=body,
                gzipped=_gzipped(body, kept),
                etag=f'"{digest}"',
                content_type=TYPES[path.suffix],
            )
    return asset


def _gzipped(body: bytes, kept: Path | None) -> bytes:
    """``body`` gzipped; with ``kept``, read from there when an earlier start wrote it
    (and checked), else written there: compressing plotly.js costs a fifth of a second
    of CPU, which the first page of every start would otherwise compete with."""
    if kept is not None:
        with contextlib.suppress(OSError, EOFError, zlib.error, gzip.BadGzipFile):
            data = kept.read_bytes()
            if gzip.decompress(data) == body:
                return data
    data = gzip.compress(body, 6, mtime=0)
    if kept is not None:
        try:
            private_dir(kept.parent)  # 0700: the column caches beside it are run data
            for old in kept.parent.glob("plotly-*.js.gz"):
                old.unlink(missing_ok=True)  # an earlier plotly's
            tmp = kept.with_name(f".{kept.name}.{os.getpid()}.tmp")
            write_private(tmp, data)
            os.replace(tmp, kept)
        except OSError as exc:
            log.info("could not keep plotly.js gzipped in %s: %s", kept.parent, exc)
    return data


def shipped() -> list[str]:
    """The names of every servable file (plotly.js only when plotly is installed)."""
    names = sorted(p.name for p in STATIC.iterdir() if p.suffix in TYPES)
    try:
        plotly_path()
    except PlotlyMissing:
        return names
    return [*names, PLOTLY]


def warm(keep_in: Path | None = None) -> None:
    """Load (read and gzip) every asset now, so no request waits for it; ``keep_in``:
    see ``load``."""
    for name in shipped():
        load(name, keep_in)


@functools.cache
def version() -> str:
    """A short fingerprint of the shipped files and of plotly.js (a plotly upgrade must
    change it too), appended to their URLs: see ``IMMUTABLE``."""
    digest = hashlib.sha256()
    for path in sorted(STATIC.iterdir()):
        if path.suffix in TYPES:
            digest.update(path.read_bytes())
    try:
        st = plotly_path().stat()
        digest.update(f"{st.st_size}:{st.st_mtime_ns}".encode())
    except PlotlyMissing:
        pass  # pages then keep their static chart previews
    return digest.hexdigest()[:10]


def respond_asset(request: Request, asset: Asset) -> HTTPResponse:
    """The asset (gzipped when the browser takes it), or 304 when it already has it."""
    # Only the current fingerprint is forever: an old or missing ``v`` revalidates.
    cache = IMMUTABLE if request.args.get("v") == version() else "no-cache"
    headers = {"ETag": asset.etag, "Cache-Control": cache, "Vary": "Accept-Encoding"}
    if request.headers.get("if-none-match") == asset.etag:
        return HTTPResponse(status=304, headers=headers)
    if "gzip" in request.headers.get("accept-encoding", ""):
        headers["Content-Encoding"] = "gzip"
        return HTTPResponse(asset.gzipped, headers=headers, content_type=asset.content_type)
    return HTTPResponse(asset.body, headers=headers, content_type=asset.content_type)
