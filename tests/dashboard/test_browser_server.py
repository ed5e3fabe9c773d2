"""The dashboard of ``whirr server`` in real headless Chromium: signing in and out with the
browser's own form posts (the Origin and Sec-Fetch-Site a browser sends, not httpx's)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from server_process import ServerProcess

from dashboard.browser import available, chromium, console_errors, wait_for

if not available():
    pytest.fail(
        "the browser tests need chromium, chromium-driver and selenium: "
        "apt-get install -y chromium chromium-driver && pip install selenium",
        pytrace=False,
    )

CSS = "css selector"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    proc = ServerProcess(Path(tmp_path_factory.mktemp("browser-server")))
    yield proc
    proc.stop()


def sign_in(driver: Any, server: ServerProcess, path: str) -> None:
    """Open ``path``, land on the sign-in page, type the token and submit the form."""
    driver.get(server.url + path)
    wait_for(driver, lambda d: urlsplit(d.current_url).path == "/login", message="sign-in page")
    driver.find_element(CSS, "#token").send_keys(server.token)
    driver.find_element(CSS, "form[action='/login'] button[type=submit]").click()
    wait_for(
        driver,
        lambda d: urlsplit(d.current_url).path == urlsplit(server.url + path).path,
        message=f"back on {path} after signing in",
    )


def test_sign_in_and_out_in_a_browser(server: ServerProcess) -> None:
    with chromium() as driver:
        driver.get(server.url + "/queue")
        wait_for(driver, lambda d: urlsplit(d.current_url).path == "/login")
        # A wrong token is refused on the page itself (not a 403 for the form post).
        driver.find_element(CSS, "#token").send_keys("not-the-token")
        driver.find_element(CSS, "form[action='/login'] button[type=submit]").click()
        error = wait_for(driver, lambda d: d.find_elements(CSS, ".form-error"))
        assert error[0].text == "That is not the token."
        assert [e for e in console_errors(driver) if "401 (Unauthorized)" not in e] == []

        sign_in(driver, server, "/queue")
        wait_for(
            driver,
            lambda d: d.find_elements(CSS, "main h1") and not d.find_elements(CSS, ".loading"),
            message="the queue page renders",
        )
        cookie = driver.get_cookie("whirr_session")
        assert cookie is not None and cookie["httpOnly"] and not cookie["secure"]
        assert cookie["sameSite"] == "Strict"
        # The page's own requests (JSON, the live stream) work with the cookie.
        wait_for(
            driver,
            lambda d: d.find_element(CSS, "#live").get_attribute("data-state") == "live",
            message="live updates connect",
        )
        assert console_errors(driver) == []

        driver.find_element(CSS, "#logout-form button[type=submit]").click()
        wait_for(
            driver,
            lambda d: urlsplit(d.current_url).path == "/login",
            message="signed out to the sign-in page",
        )
        assert driver.get_cookie("whirr_session") is None
        driver.get(server.url + "/runs")
        wait_for(driver, lambda d: urlsplit(d.current_url).path == "/login")


def test_sign_in_on_loopback_behind_an_https_public_url(tmp_path: Path) -> None:
    # The cookie is Secure there (the proxy speaks https to browsers); a browser on the
    # server's machine still signs in over plain http://127.0.0.1, a trustworthy origin.
    proc = ServerProcess(tmp_path, args=("--public-url", "https://whirr.example.com"))
    try:
        with chromium() as driver:
            sign_in(driver, proc, "/runs")
            cookie = driver.get_cookie("whirr_session")
            assert cookie is not None and cookie["secure"] and cookie["httpOnly"]
            wait_for(driver, lambda d: d.find_elements(CSS, "#logout-form"))
            driver.find_element(CSS, "#logout-form button[type=submit]").click()
            wait_for(driver, lambda d: urlsplit(d.current_url).path == "/login")
            assert driver.get_cookie("whirr_session") is None
    finally:
        proc.stop()
