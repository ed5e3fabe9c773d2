"""The dashboard of ``whirr server`` in real headless Chromium: signing in and out with the
browser's own form posts (the Origin and Sec-Fetch-Site a browser sends, not httpx's),
and run names / config keys that look like markup drawn as text by plotly."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from server_process import ServerProcess

from dashboard.browser import available, chromium, console_errors, wait_for
from dashboard.demo import write_metrics
from whirr.client import WhirrClient

if not available():
    pytest.fail(
        "the browser tests need chromium, chromium-driver and selenium: "
        "apt-get install -y chromium chromium-driver && pip install selenium",
        pytrace=False,
    )

CSS = "css selector"
LINK = '<a href="https://evil.example/x">x</a>'
BOLD_KEY = "<b>depth</b>"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    proc = ServerProcess(Path(tmp_path_factory.mktemp("browser-server")))
    yield proc
    proc.stop()


@pytest.fixture(scope="module")
def runs(server: ServerProcess) -> list[str]:
    """Two runs with metrics: one named like a link, configs differing in a bold-looking key
    and a link-looking value."""
    ids = []
    with WhirrClient(server.url, token=server.token) as api:
        for i, name in enumerate([LINK, "plain & <simple>"]):
            job = api.submit(
                ["true"],
                "/",
                name=name,
                config={BOLD_KEY: i + 1, "opt": LINK if i == 0 else "sgd"},
            )
            api.register_worker(f"w{i}", "box")
            claimed = api.claim(f"w{i}")
            assert claimed is not None and claimed.id == job.job_id
            api.started(job.job_id, f"w{i}", claimed.attempt, 4242)
            run_dir = server.data_dir / "runs" / job.run_id
            run_dir.mkdir(parents=True, exist_ok=True)
            write_metrics(
                run_dir / "metrics.jsonl",
                [{"step": s, "loss": (i + 1) / (s + 1)} for s in range(50)],
            )
            api.update_summary(job.run_id, {"<i>best</i>": 0.5 + i})
            ids.append(job.run_id)
    return ids


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


def svg_text(driver: Any, selector: str) -> list[str]:
    """The text of each element ``selector`` finds (textContent: SVG text is not laid out
    for Selenium's .text the same way as HTML)."""
    found: list[str] = driver.execute_script(
        "return [...document.querySelectorAll(arguments[0])].map(e => e.textContent);", selector
    )
    return found


def test_markup_in_names_and_keys_is_text_in_charts(server: ServerProcess, runs: list[str]) -> None:
    with chromium(webgl=True) as driver:
        sign_in(driver, server, f"/compare?runs={','.join(runs)}&metric=loss")
        wait_for(
            driver,
            lambda d: d.find_elements(CSS, "#compare-chart.js-plotly-plot .legendtext"),
            message="the compare chart's legend",
        )
        # The legend shows the names as typed, and no link or bold tag made it into the SVG.
        assert sorted(svg_text(driver, "#compare-chart .legendtext")) == sorted(
            [LINK, "plain & <simple>"]
        )
        assert driver.find_elements(CSS, "#compare-chart a") == []
        assert driver.find_elements(CSS, "#compare-chart tspan[style*='bold']") == []
        # Hovering shows the names in the unified hover label, as text too.
        driver.execute_script(
            "Plotly.Fx.hover(document.getElementById('compare-chart'), {xval: 10}, 'xy');"
        )
        hover = wait_for(
            driver,
            lambda d: svg_text(d, "#compare-chart .hoverlayer .legendtext"),
            message="the hover label",
        )
        # (plotly shortens names in hover labels to 15 characters.)
        assert any(label.startswith('<a href="') for label in hover), hover
        assert driver.find_elements(CSS, "#compare-chart .hoverlayer a") == []

        parcoords = driver.find_element(CSS, "#parcoords")
        if "needs WebGL" in parcoords.text:
            pytest.skip("no WebGL in this Chromium: parallel coordinates are not drawn")
        wait_for(
            driver,
            lambda d: d.find_elements(CSS, "#parcoords .axis-title"),
            message="the parallel coordinates' axis titles",
        )
        titles = svg_text(driver, "#parcoords .axis-title")
        assert BOLD_KEY in titles and "<i>best</i>" in titles
        assert svg_text(driver, "#parcoords .cbtitle") == ["<i>best</i>"]
        ticks = svg_text(driver, "#parcoords .axis .tick text")
        assert LINK in ticks  # (tick labels are plain text to plotly: not escaped)
        assert driver.find_elements(CSS, "#parcoords a") == []
        assert driver.find_elements(CSS, "#parcoords tspan[style*='bold']") == []
        assert driver.find_elements(CSS, "#parcoords tspan[style*='italic']") == []
        assert console_errors(driver) == []
