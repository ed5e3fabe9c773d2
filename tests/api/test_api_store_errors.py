"""How the API answers when the store refuses: the request's fault is 422 with the
field named, a store that cannot be used is 503; neither is ever a 500."""

from __future__ import annotations

import json

from whirr.api.app import _error_response
from whirr.store.protocol import InvalidEvent, StoreError, StoreWriteError


def _answer(exc: Exception) -> tuple[int, str]:
    response = _error_response(exc)
    return response.status, json.loads(response.body)["detail"]


def test_a_refused_event_is_the_requests_fault() -> None:
    status, detail = _answer(InvalidEvent("refused to record it: job.submitted: priority"))
    assert status == 422
    assert "priority" in detail


def test_a_store_that_cannot_write_is_unavailable_and_says_why() -> None:
    status, detail = _answer(StoreWriteError("cannot write: the disk is full"))
    assert status == 503
    assert "disk is full" in detail
    assert _answer(StoreError("locked"))[0] == 503
