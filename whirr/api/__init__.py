"""The HTTP API (``/api/v1``): the sanic app of ``whirr server`` (which also mounts the
dashboard, ``whirr.dashboard``).

``create_app`` is imported lazily: importing this package must not load sanic.
"""

from __future__ import annotations

from typing import Any

__all__ = ["ServerConfig", "create_app"]


def __getattr__(name: str) -> Any:
    if name == "create_app":
        from whirr.api.app import create_app

        return create_app
    if name == "ServerConfig":
        from whirr.web.config import ServerConfig

        return ServerConfig
    raise AttributeError(f"module 'whirr.api' has no attribute {name!r}")
