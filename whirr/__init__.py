"""whirr: local-first experiment orchestration.

``import whirr`` stays cheap: the tracking API is imported on first use.
"""

from __future__ import annotations

from typing import Any

__version__ = "0.6.0"

__all__ = ["Run", "__version__", "init", "read_meta", "read_metrics"]


def __getattr__(name: str) -> Any:
    if name in ("init", "Run"):
        from whirr import tracking

        return getattr(tracking, name)
    if name in ("read_metrics", "read_meta"):
        from whirr import run

        return getattr(run, name)
    raise AttributeError(f"module 'whirr' has no attribute {name!r}")
