"""Errors the analytics layer raises; the CLI prints them as ``Error: ...``. A run that
cannot be resolved is the facade's ``NotFound``/``InvalidRequest`` (one resolver)."""

from __future__ import annotations

from whirr.services.errors import InvalidRequest


class AnalyticsError(InvalidRequest):
    """A question that cannot be answered as asked (bad SQL, unknown metric, bad format)."""
