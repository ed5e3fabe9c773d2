"""The dashboard in real headless Chromium (Debian's chromium + chromium-driver, selenium):
pages render without script errors, cancel works from a click, compare draws the right
traces, and a metric point written to disk appears on an open chart without a reload."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from dashboard.browser import available, chromium, console_errors, wait_for
from dashboard.demo import write_metrics
from dashboard.process import DashboardProcess
from whirr.project import Project

if not available():
    # .ci/run installs them; a developer machine without Chromium still runs the rest.
    pytest.fail(
        "the browser tests need chromium, chromium-driver and selenium: "
        "apt-get install -y chromium chromium-driver && pip install selenium",
        pytrace=False,
    )

Ids = tuple[Path, dict[str, Any]]
CSS = "css selector"


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    with chromium() as driver:
        yield driver


def loaded(driver: Any) -> bool:
    return not driver.find_elements(CSS, ".loading")


@pytest.mark.parametrize(
    "path, marker",
    [
        ("/", "[data-count=running]"),
        ("/queue", "table.data"),
        ("/runs", "table.nav tbody tr"),
        ("/runs/job-2", "#metric-charts .js-plotly-plot"),
        ("/compare?runs=job-1,job-2", "#compare-chart.js-plotly-plot"),
    ],
)
def test_each_page_renders_without_script_errors(
    browser: Any, dashboard: DashboardProcess, path: str, marker: str
) -> None:
    browser.get(dashboard.url + path)
    wait_for(browser, lambda d: d.find_elements(CSS, marker), message=f"{marker} on {path}")
    wait_for(
        browser,
        lambda d: d.find_element(CSS, "#live").get_attribute("data-state") == "live",
        message="live updates connect",
    )
    assert console_errors(browser) == []


def test_values_are_text_never_markup(browser: Any, dashboard: DashboardProcess) -> None:
    browser.get(dashboard.url + "/runs?q=notebook")
    row = wait_for(browser, lambda d: d.find_elements(CSS, "table.nav tbody tr .run-name"))
    assert row[0].text == "notebook <b>probe</b>"
    assert not browser.find_elements(CSS, "table.nav b")


def test_cancel_from_the_queue_page(
    browser: Any, dashboard: DashboardProcess, project: Ids
) -> None:
    job = project[1]["queued_jobs"][2]
    browser.get(dashboard.url + "/queue")
    selector = f"button[data-action=cancel][data-job='{job}']"
    button = wait_for(browser, lambda d: d.find_elements(CSS, selector))
    button[0].click()
    # The job leaves the active table and shows up as cancelled, without a reload.
    ended = f"tr[data-job='{job}'][data-status=cancelled]"
    wait_for(
        browser,
        lambda d: d.find_elements(CSS, ended),
        message="the cancelled job is listed as ended",
    )
    assert "Cancelled job" in browser.find_element(CSS, "#toast").text
    with dashboard.client() as c:
        ended = {j["id"]: j["status"] for j in c.get("/ui/queue").json()["ended"]}
    assert ended[job] == "cancelled"


def test_compare_draws_one_trace_per_run_and_the_config_diff(
    browser: Any, dashboard: DashboardProcess
) -> None:
    browser.get(dashboard.url + "/compare?runs=job-1,job-3,job-5&metric=val/loss")
    wait_for(
        browser,
        lambda d: d.execute_script(
            "const el = document.getElementById('compare-chart');"
            " return el && el.data && el.data.length;"
        ),
    )
    names = browser.execute_script(
        "return document.getElementById('compare-chart').data.map(t => t.name);"
    )
    assert names == ["resnet-sweep-0", "resnet-sweep-2", "resnet-sweep-4"]
    points = browser.execute_script(
        "return document.getElementById('compare-chart').data.map(t => t.x.length);"
    )
    assert points == [60, 60, 60]  # val/loss is logged every 5th of 300 rows
    differing = [
        e.get_attribute("data-key")
        for e in browser.find_elements(CSS, "#diff-table tr[data-group=config]")
    ]
    assert set(differing) == {"lr", "depth"} | ({"optimizer", "data.augment"} & set(differing))
    parcoords = browser.find_element(CSS, "#parcoords")
    # Drawn where WebGL works; otherwise a plain note instead of plotly's own warning.
    assert (
        parcoords.get_attribute("class") == "chart big js-plotly-plot"
        or "needs WebGL" in parcoords.text
    )
    # Smoothing adds a faint raw trace under each smoothed one.
    browser.execute_script(
        "const s = document.getElementById('smoothing'); s.value = 0.9;"
        "s.dispatchEvent(new Event('input'));"
    )
    assert (
        browser.execute_script("return document.getElementById('compare-chart').data.length;") == 6
    )
    assert console_errors(browser) == []


def test_charts_are_previews_until_plotly_has_compiled(
    browser: Any, dashboard: DashboardProcess
) -> None:
    # Without plotly.js (blocked here, as by a proxy or a broken install) every chart is
    # still drawn, by preview.js: a line per metric with labelled axes, and a word on why.
    with chromium() as blocked:
        blocked.execute_cdp_cmd("Network.enable", {})
        blocked.execute_cdp_cmd("Network.setBlockedURLs", {"urls": ["*plotly.min.js*"]})
        blocked.get(f"{dashboard.url}/runs/job-2")
        charts = "#metric-charts .chart"
        wait_for(
            blocked,
            lambda d: (
                all(
                    "could not be loaded" in (e.get_attribute("title") or "")
                    for e in d.find_elements(CSS, charts)
                )
                and d.find_elements(CSS, charts)
            ),
            message="the charts say plotly.js is missing",
        )
        lines = blocked.find_elements(CSS, f"{charts} svg.chart-preview path")
        assert len(lines) == len(blocked.find_elements(CSS, charts)) >= 2
        assert all(line.get_attribute("d").count("L") >= 10 for line in lines)
        labels = [t.text for t in blocked.find_elements(CSS, f"{charts} svg.chart-preview text")]
        assert "step" in labels and "0" in labels
        assert not blocked.find_elements(CSS, ".js-plotly-plot")
        # The blocked load may be logged; no script error may be.
        assert all("plotly.min.js" in e for e in console_errors(blocked))
    # With plotly.js, the previews give way to plotly charts of the same metrics.
    browser.get(f"{dashboard.url}/runs/job-2")
    wait_for(
        browser,
        lambda d: (
            len(d.find_elements(CSS, "#metric-charts .chart.js-plotly-plot")) == len(lines)
            and not d.find_elements(CSS, "svg.chart-preview")
        ),
        message="plotly replaces every preview",
    )
    assert console_errors(browser) == []


def test_a_new_metric_point_appears_live(
    browser: Any, dashboard: DashboardProcess, project: Ids
) -> None:
    root, ids = project
    run_id = ids["running_run"]
    browser.get(f"{dashboard.url}/runs/{run_id}")
    chart = "#metric-charts [data-key='train/loss']"
    wait_for(
        browser,
        lambda d: d.execute_script(
            f'const el = document.querySelector("{chart}");return el && el.data && el.data.length;'
        ),
    )
    wait_for(browser, lambda d: d.find_element(CSS, "#live").get_attribute("data-state") == "live")
    last_x = (
        f'const el = document.querySelector("{chart}");'
        "if (!(el && el.data && el.data.length)) return null;"
        "const x = el.data[0].x; return x[x.length - 1];"
    )
    before = browser.execute_script(last_x)
    columns = Project(root).run_dir(run_id) / "metrics.jsonl"
    rows = columns.read_bytes().count(b"\n")
    write_metrics(columns, [{"step": 123_456, "train/loss": 0.05}], start_idx=rows)
    wait_for(
        browser,
        lambda d: d.execute_script(last_x) == 123_456,
        timeout=15,
        message="the new point is drawn",
    )
    assert before != 123_456


def test_pages_fall_back_to_polling_without_a_stream(
    browser: Any, dashboard: DashboardProcess, project: Ids
) -> None:
    # Pretend the stream is impossible (a proxy that buffers it): the page must poll.
    browser.execute_cdp_cmd(
        "Page.addScriptToEvaluateOnNewDocument", {"source": "delete window.EventSource;"}
    )
    try:
        browser.get(dashboard.url + "/")
        wait_for(
            browser, lambda d: d.find_element(CSS, "#live").get_attribute("data-state") == "polling"
        )
        # Read in one step: the page re-renders, so a held element can go stale.
        count = lambda d: d.execute_script(  # noqa: E731
            "const e = document.querySelector('[data-count=queued]'); return e && e.textContent;"
        )
        before = int(wait_for(browser, count))
        with dashboard.client() as c:
            token = dashboard.csrf(c)
            resp = c.post(
                f"/ui/jobs/{project[1]['jobs']['failed']}/retry", headers={"X-CSRF-Token": token}
            )
            assert resp.status_code == 200
        wait_for(
            browser,
            lambda d: int(count(d)) == before + 1,
            timeout=15,
            message="the queued count updates by polling",
        )
    finally:
        browser.get("about:blank")


def test_keyboard_shortcuts_and_theme(browser: Any, dashboard: DashboardProcess) -> None:
    from selenium.webdriver.common.keys import Keys

    browser.get(dashboard.url + "/runs")
    wait_for(browser, lambda d: d.find_elements(CSS, "table.nav tbody tr"))
    body = browser.find_element(CSS, "body")
    theme = browser.execute_script("return document.documentElement.dataset.theme")
    body.send_keys("t")
    # Each key's effect is awaited (a loaded machine may run the handler late).
    wait_for(
        browser,
        lambda d: d.execute_script("return document.documentElement.dataset.theme") != theme,
    )
    body.send_keys("/")
    wait_for(browser, lambda d: d.execute_script("return document.activeElement.type") == "search")
    browser.switch_to.active_element.send_keys("sweep-3")
    wait_for(browser, lambda d: len(d.find_elements(CSS, "table.nav tbody tr")) == 1)
    browser.switch_to.active_element.send_keys(Keys.ESCAPE)
    body.send_keys("j")
    body.send_keys(Keys.ENTER)
    wait_for(browser, lambda d: "/runs/job-4" in d.current_url)
    body = browser.find_element(CSS, "body")
    # "g" waits 1.2 s for its second key: both go in one command, so no round trip to
    # the browser (slow under load) falls between them.
    body.send_keys("gq")
    wait_for(browser, lambda d: d.current_url.endswith("/queue"))


def test_the_run_page_says_where_the_files_are(browser: Any, dashboard: DashboardProcess) -> None:
    """The line ``whirr show`` prints, under the run's title (a project's: local)."""
    browser.get(dashboard.url + "/runs/job-2")
    wait_for(browser, lambda d: d.find_elements(CSS, "#run-files"), message="#run-files")
    line = browser.find_element(CSS, "#run-files").text
    assert line.startswith("Files: local (") and "/runs/job-2)" in line, line
    assert not browser.find_elements(CSS, "#run-files .files-warning")
    assert console_errors(browser) == []
