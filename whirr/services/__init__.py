"""Services: validate requests, decide, append events. Synchronous; edges call them."""

from whirr.services.errors import InvalidRequest, InvalidState, LeaseLost, NotFound, WhirrError
from whirr.services.jobs import Jobs
from whirr.services.queue import Queue
from whirr.services.workers import Workers

__all__ = [
    "InvalidRequest",
    "InvalidState",
    "Jobs",
    "LeaseLost",
    "NotFound",
    "Queue",
    "WhirrError",
    "Workers",
]
