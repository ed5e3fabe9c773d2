"""Errors the analytics layer raises; the CLI prints them as ``Error: ...``."""

from __future__ import annotations

from whirr.services.errors import InvalidRequest, NotFound


class AnalyticsError(InvalidRequest):
    """A question that cannot be answered as asked (bad SQL, unknown metric, bad format)."""


class RunNotFound(NotFound):
    """No run matches an id or prefix."""


class AmbiguousRun(AnalyticsError):
    """A prefix matches more than one run."""
