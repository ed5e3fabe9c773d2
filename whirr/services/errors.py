"""Errors services raise for the edges (CLI, HTTP) to turn into messages."""

from __future__ import annotations


class WhirrError(Exception):
    """A request that cannot be done, with a message fit for the user."""

    #: The HTTP status the API answers with.
    status = 400

    def fields(self) -> dict[str, object]:
        """Keys the API's error body carries beside ``detail`` (``reason``, ...)."""
        return {}


class NotFound(WhirrError):
    """The job, run or worker does not exist."""

    status = 404


class InvalidState(WhirrError):
    """The thing exists but is in a state that forbids the request."""

    status = 409


class LeaseLost(InvalidState):
    """A worker reported on an attempt it no longer holds (fencing by attempt)."""


class InvalidRequest(WhirrError):
    """The request itself is malformed (empty command, missing workdir, ...)."""

    status = 422


class StaleAttempt(LeaseLost):
    """An upload or report for an attempt that is no longer the job's current one: the
    server keeps attempts apart and refuses it (409, ``reason: stale_attempt``)."""

    reason = "stale_attempt"

    def __init__(self, message: str, attempt: int) -> None:
        super().__init__(message)
        #: The job's current attempt.
        self.attempt = attempt

    def fields(self) -> dict[str, object]:
        return {"reason": self.reason, "attempt": self.attempt}


class OffsetGap(InvalidState):
    """An append upload starts past the end of what the server has: the shipper resumes
    from ``size`` (409, ``reason: offset_gap``)."""

    reason = "offset_gap"

    def __init__(self, message: str, size: int) -> None:
        super().__init__(message)
        #: The attempt-local size the server has.
        self.size = size

    def fields(self) -> dict[str, object]:
        return {"reason": self.reason, "size": self.size}
