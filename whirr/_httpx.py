"""``httpx``, imported without its command-line tool.

``import httpx`` also imports ``httpx._main`` (the ``httpx`` console command: rich,
pygments) whenever those are installed, and whirr depends on rich: ~25 ms of every remote
command's start-up (measured: 57 ms against 33 ms) for a tool whirr never runs. httpx
expects that import to fail when its CLI extras are absent and then offers a stub
``httpx.main``; this makes it fail here, during the first import only, and takes the block
away at once, so a later ``import httpx._main`` (anyone who wants the tool) still works.
"""

from __future__ import annotations

import sys

if "httpx" not in sys.modules and "httpx._main" not in sys.modules:
    sys.modules["httpx._main"] = None  # type: ignore[assignment]
    try:
        import httpx
    finally:
        del sys.modules["httpx._main"]
else:
    import httpx

__all__ = ["httpx"]
