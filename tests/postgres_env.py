"""The test PostgreSQL server's URL, for the store contract and end-to-end tests.

``WHIRR_TEST_POSTGRES_URL`` names it (``eval "$(tools/ci/postgres.sh)"`` starts one and
prints it). Without it the PostgreSQL tests skip on a developer machine but *fail* under
CI (``CI`` set), so a CI run can never pass by quietly testing nothing.
"""

from __future__ import annotations

import os

import pytest

POSTGRES_URL_VAR = "WHIRR_TEST_POSTGRES_URL"


def postgres_url_or_skip() -> str:
    """The URL; a skip locally when it is not set, a failure under CI."""
    url = os.environ.get(POSTGRES_URL_VAR, "").strip()
    if url:
        return url
    message = f'{POSTGRES_URL_VAR} is not set; start a server with `eval "$(tools/ci/postgres.sh)"`'
    if os.environ.get("CI", "").strip().lower() not in ("", "0", "false", "no"):
        pytest.fail(f"CI must run the PostgreSQL tests: {message}", pytrace=False)
    pytest.skip(message)
