"""Errors services raise for the edges (CLI, HTTP) to turn into messages."""

from __future__ import annotations


class WhirrError(Exception):
    """A request that cannot be done, with a message fit for the user."""

    #: The HTTP status the API answers with.
    status = 400


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
