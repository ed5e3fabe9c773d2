"""The version of the wire itself, exchanged on every API request.

Clients (``WhirrClient``, the Python and Rust workers) send ``X-Whirr-Protocol: N``; the
server answers every ``/api/v1`` request with its own. A server accepts protocols
``OLDEST`` to ``CURRENT``: a newer client (it may send fields this server does not know)
or one older than ``OLDEST`` gets 426 with a message naming which side to upgrade,
instead of a confusing 422 about some field. A request without the header is the original
whirr's (protocol 1), accepted while ``OLDEST`` is 1.

Bump ``CURRENT`` when a request gains a field whose meaning an older server would
silently miss; raise ``OLDEST`` only when the server stops honouring an old request shape.
"""

from __future__ import annotations

HEADER = "X-Whirr-Protocol"
#: What this side speaks. 2: claims carry capacity (free GPUs, slots), jobs carry
#: ``waiting``, runs resolve job refs; 1: the original whirr 0.5.3.
CURRENT = 2
#: The oldest protocol a server of this version still answers.
OLDEST = 1


def mismatch(client: int, server_current: int = CURRENT, server_oldest: int = OLDEST) -> str | None:
    """Why a server speaking ``server_oldest..server_current`` refuses a client speaking
    ``client`` (None when it does not)."""
    if client > server_current:
        return (
            f"this client speaks whirr protocol {client} but the server only up to "
            f"{server_current}: upgrade the whirr server (or use an older client/worker)"
        )
    if client < server_oldest:
        return (
            f"this client speaks whirr protocol {client} but the server needs at least "
            f"{server_oldest}: upgrade the worker/client"
        )
    return None
