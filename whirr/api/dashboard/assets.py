"""Static files of the dashboard: its own CSS/JS and plotly.js from the installed
``plotly`` Python package (no CDN: the dashboard works offline).

Files are read once, gzipped once and served from memory with an ETag; plotly.js shrinks
from about 4.7 MB to 1.4 MB on the wire.
"""

from __future__ import annotations

import gzip
import hashlib
import threading
from dataclasses import dataclass
from pathlib import Path

from sanic import HTTPResponse, Request

from whirr.services.errors import NotFound, WhirrError

STATIC = Path(__file__).parent / "static"
TYPES = {".css": "text/css; charset=utf-8", ".js": "text/javascript; charset=utf-8",
         ".svg": "image/svg+xml"}
PLOTLY = "vendor/plotly.min.js"


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


_cache: dict[str, Asset] = {}
_lock = threading.Lock()


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


def load(name: str) -> Asset:
    """The asset called ``name`` (``dashboard.css``, ``vendor/plotly.min.js``...)."""
    asset = _cache.get(name)
    if asset is not None:
        return asset
    path = _locate(name)
    body = path.read_bytes()
    with _lock:
        asset = _cache.get(name)
        if asset is None:
            asset = _cache[name] = Asset(
                body=body, gzipped=gzip.compress(body, 6, mtime=0),
                etag='"' + hashlib.sha256(body).hexdigest()[:20] + '"',
                content_type=TYPES[path.suffix])
    return asset


def version() -> str:
    """A short fingerprint of the shipped files, appended to their URLs so browsers can
    cache them for a long time and still see a new release at once."""
    digest = hashlib.sha256()
    for path in sorted(STATIC.iterdir()):
        if path.suffix in TYPES:
            digest.update(path.read_bytes())
    return digest.hexdigest()[:10]


def respond_asset(request: Request, asset: Asset) -> HTTPResponse:
    """The asset (gzipped when the browser takes it), or 304 when it already has it."""
    headers = {"ETag": asset.etag, "Cache-Control": "public, max-age=86400",
               "Vary": "Accept-Encoding"}
    if request.headers.get("if-none-match") == asset.etag:
        return HTTPResponse(status=304, headers=headers)
    if "gzip" in request.headers.get("accept-encoding", ""):
        headers["Content-Encoding"] = "gzip"
        return HTTPResponse(asset.gzipped, headers=headers, content_type=asset.content_type)
    return HTTPResponse(asset.body, headers=headers, content_type=asset.content_type)
