"""The server-side pieces of commands not yet behind ``whirr.facade``: a client for the
sweep and ablation commands (``whirr worker --server`` lives in ``whirr.cli.worker``)."""

from __future__ import annotations

from typing import Any


def client(server: str) -> Any:
    """A client for ``server`` with the token from ``WHIRR_TOKEN``."""
    from whirr.client import WhirrClient

    return WhirrClient(server)
