"""The HTTP API (``/api/v1``): one sanic app, used by ``whirr server`` and the dashboard.

``create_app`` is imported lazily: importing a module of this package (``files``,
``config``) must not load sanic.
"""

from __future__ import annotations

from typing import Any

__all__ = ["ServerConfig", "create_app"]


def __getattr__(name: str) -> Any:
    if name == "create_app":
        from whirr.api.app import create_app

        return create_app
    if name == "ServerConfig":
        from whirr.api.config import ServerConfig

        return ServerConfig
    raise AttributeError(f"module 'whirr.api' has no attribute {name!r}")
