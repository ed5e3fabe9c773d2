"""The run page in real headless Chromium (issue 21's dashboard items, issue 19's run
management): charts grouped by prefix in the order the run logged its keys, step-like
keys hidden unless asked, pinned and hidden charts kept in the address; system charts on
sensible axes with constants as numbers; why a run failed, at the top; one row count
while the run is written to; rename, tags, note, archive and delete from the page."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

from dashboard import run_page_project
from dashboard.browser import available, chromium, console_errors, wait_for
from dashboard.demo import write_metrics
from dashboard.process import DashboardProcess

if not available():
    pytest.fail(
        "the browser tests need chromium, chromium-driver and selenium: "
        "apt-get install -y chromium chromium-driver && pip install selenium",
        pytrace=False,
    )

CSS = "css selector"
Ids = dict[str, Any]

SECTIONS = """return [...document.querySelectorAll('#metric-charts .chart-group')].map(g =>
  [g.dataset.group, [...g.querySelectorAll('.chart-box')].map(b => b.dataset.chart)]);"""
HIDDEN = """return [...document.querySelectorAll('#hidden-charts [data-show]')]
  .map(b => b.dataset.show);"""


@pytest.fixture(scope="module")
def ids(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, Ids]]:
    root = tmp_path_factory.mktemp("run-page") / "proj"
    root.mkdir()
    yield root, run_page_project.build(root)


@pytest.fixture(scope="module")
def dash(ids: tuple[Path, Ids]) -> Iterator[DashboardProcess]:
    proc = DashboardProcess(ids[0])
    yield proc
    proc.stop()


@pytest.fixture(scope="module")
def browser(dash: DashboardProcess) -> Iterator[Any]:
    # Closed before the dashboard stops: an open page's stream would hold its shutdown.
    with chromium() as driver:
        yield driver


def sections(browser: Any) -> list[list[Any]]:
    return browser.execute_script(SECTIONS)  # type: ignore[no-any-return]


def query(browser: Any) -> dict[str, list[str]]:
    return parse_qs(urlsplit(browser.current_url).query)


def text(browser: Any, selector: str) -> str | None:
    """An element's text read in one step (the page re-renders: a held element goes stale)."""
    return browser.execute_script(  # type: ignore[no-any-return]
        "const e = document.querySelector(arguments[0]); return e && e.innerText;", selector
    )


def click(browser: Any, selector: str) -> None:
    """Click what ``selector`` finds, again if a re-render replaced it meanwhile."""
    from selenium.common.exceptions import StaleElementReferenceException

    def once(d: Any) -> bool:
        try:
            found = d.find_elements(CSS, selector)
            if found:
                found[0].click()
            return bool(found)
        except StaleElementReferenceException:
            return False

    wait_for(browser, once, message=f"click {selector}")


def open_run(browser: Any, url: str) -> None:
    browser.get(url)
    wait_for(browser, lambda d: d.find_elements(CSS, "#metric-charts .chart-box"), message=url)


def test_charts_are_grouped_in_logged_order_and_the_view_is_kept_in_the_address(
    browser: Any, dash: DashboardProcess, ids: tuple[Path, Ids]
) -> None:
    run_id = ids[1]["ordered"]
    open_run(browser, f"{dash.url}/runs/{run_id}")
    # Sections by prefix, in the order the run first logged them; keys in logged order
    # (train/loss before train/acc); epoch and global_step count progress: not charted.
    assert sections(browser) == [
        ["train", ["train/loss", "train/acc"]],
        ["val", ["val/loss"]],
        ["Charts", ["lr"]],
    ]
    click(browser, "#show-steps")
    wait_for(browser, lambda d: sections(d)[0] == ["Charts", ["epoch", "global_step", "lr"]])
    assert query(browser) == {"steps": ["1"]}
    click(browser, "#show-steps")
    wait_for(browser, lambda d: len(sections(d)) == 3)

    pin = "#metric-charts .chart-box[data-chart='val/loss'] [data-act=pin]"
    click(browser, pin)
    wait_for(browser, lambda d: sections(d)[0] == ["Pinned", ["val/loss"]])
    assert browser.find_element(CSS, pin).get_attribute("aria-pressed") == "true"
    hide = "#metric-charts .chart-box[data-chart='lr'] [data-act=hide]"
    click(browser, hide)
    wait_for(browser, lambda d: browser.execute_script(HIDDEN) == ["lr"])
    expected = [["Pinned", ["val/loss"]], ["train", ["train/loss", "train/acc"]]]
    assert sections(browser) == expected
    assert query(browser) == {"pin": ["val/loss"], "hide": ["lr"]}

    # The address reproduces the view: opened afresh (a link sent to someone), same charts.
    link = browser.current_url
    browser.get("about:blank")
    open_run(browser, link)
    wait_for(browser, lambda d: sections(d) == expected, message="the link's view")
    assert browser.execute_script(HIDDEN) == ["lr"]
    click(browser, "#hidden-charts [data-show='lr']")
    wait_for(browser, lambda d: sections(d)[-1] == ["Charts", ["lr"]])
    assert query(browser) == {"pin": ["val/loss"]}
    assert console_errors(browser) == []


def test_system_charts_use_whole_scales_and_constants_are_numbers(
    browser: Any, dash: DashboardProcess, ids: tuple[Path, Ids]
) -> None:
    open_run(browser, f"{dash.url}/runs/{ids[1]['ordered']}")
    chart = "#system-charts .chart[data-key='{}']"
    # Wait for plotly's charts (not the previews) to read their axes.
    ranges = """const el = document.querySelector(arguments[0]);
      return el && el._fullLayout ? el._fullLayout.yaxis.range : null;"""
    cpu = wait_for(browser, lambda d: d.execute_script(ranges, chart.format("cpu_percent")))
    assert cpu == [0, 100]  # 99.9-100 % is a busy CPU, not a swing
    rss = wait_for(browser, lambda d: d.execute_script(ranges, chart.format("process_rss_gb")))
    assert rss[0] == 0 and 0.5 < rss[1] < 0.7  # from 0, never -0.5 GB
    # The total memory never changed: a number, not a flat line.
    assert not browser.find_elements(CSS, chart.format("memory_total_gb"))
    assert text(browser, "#system-stats [data-key='memory_total_gb'] .value") == "64"
    assert console_errors(browser) == []


@pytest.mark.parametrize(
    "which, status, exit_text, error, last_line",
    [
        ("failed", "failed", "exit code 3", "exited with code 3", run_page_project.TRACEBACK[-1]),
        ("timed_out", "timed out", "no exit code", "timed out after 60s", "epoch 2"),
        ("crashed", "crashed", "no exit code", "the process died (SIGKILL)", None),
    ],
)
def test_a_run_that_ended_badly_says_why_at_the_top(
    browser: Any,
    dash: DashboardProcess,
    ids: tuple[Path, Ids],
    which: str,
    status: str,
    exit_text: str,
    error: str,
    last_line: str | None,
) -> None:
    browser.get(f"{dash.url}/runs/{ids[1][which]}")
    banner = wait_for(
        browser, lambda d: [e for e in d.find_elements(CSS, "#run-failure") if e.is_displayed()]
    )[0]
    assert status in (text(browser, "#run-failure .badge") or "")
    assert text(browser, "#failure-exit") == exit_text
    assert text(browser, "#failure-error") == error
    if last_line is None:  # a direct run: nothing was captured, and it says so
        wait_for(browser, lambda d: "not captured" in (text(d, "#failure-tail") or ""))
    else:
        wait_for(
            browser,
            lambda d: (text(d, "#failure-tail") or "").splitlines()[-1:] == [last_line],
        )
        tail = (text(browser, "#failure-tail") or "").splitlines()
        assert len(tail) <= 15
    # Above everything else of the run, not at the bottom of the Output panel.
    above = "return !!(arguments[0].compareDocumentPosition(document.querySelector(arguments[1]))"
    above += " & Node.DOCUMENT_POSITION_FOLLOWING);"
    assert browser.execute_script(above, banner, "#metric-charts")
    summary = text(browser, "#summary") or ""
    assert "No summary recorded" in summary and "No summary yet" not in summary
    assert console_errors(browser) == []


def test_a_completed_run_has_no_failure_banner(
    browser: Any, dash: DashboardProcess, ids: tuple[Path, Ids]
) -> None:
    open_run(browser, f"{dash.url}/runs/{ids[1]['ordered']}")
    assert not browser.find_element(CSS, "#run-failure").is_displayed()


def test_a_size_warning_is_one_line_under_the_tags(
    browser: Any, dash: DashboardProcess, ids: tuple[Path, Ids]
) -> None:
    browser.get(f"{dash.url}/runs/{ids[1]['timed_out']}")  # (a run with no metrics)
    wait_for(browser, lambda d: d.find_elements(CSS, "#size-warning"))
    line = text(browser, "#size-warning") or ""
    assert line.startswith("⚠ run directory past 10.0 GB: 11.0 GB measured"), line
    open_run(browser, f"{dash.url}/runs/{ids[1]['ordered']}")
    assert not browser.find_elements(CSS, "#size-warning")


def test_the_row_counts_agree_while_the_run_is_written_to(
    browser: Any, dash: DashboardProcess, ids: tuple[Path, Ids]
) -> None:
    """The card's header and the summary's last values said 117 and 101 rows at once: the
    summary came from the run's details, fetched on log events only, while the charts
    followed the file. Both now come from the charts' one answer."""
    run_id, run_dir = ids[1]["live"], ids[1]["live_dir"]
    rows = run_page_project.LIVE_ROWS
    both = """const c = document.querySelector('#metric-charts').closest('.card')
        .querySelector('.card-head .count');
      const s = document.querySelector('#last-values-head');
      return [c && Number(c.dataset.rows), s && Number(s.dataset.rows)];"""
    open_run(browser, f"{dash.url}/runs/{run_id}")
    wait_for(browser, lambda d: d.execute_script(both) == [rows, rows])
    wait_for(browser, lambda d: d.find_element(CSS, "#live").get_attribute("data-state") == "live")
    write_metrics(run_dir / "metrics.jsonl", run_page_project.ordered_rows(16), start_idx=rows)
    header = wait_for(
        browser,
        lambda d: (d.execute_script(both)[0] or 0) > rows and d.execute_script(both),
        timeout=15,
        message="the new rows reach the page",
    )
    assert header == [rows + 16, rows + 16]
    head = text(browser, "#last-values-head")
    assert head == f"Last logged values · {rows + 16} rows"


def test_rename_tag_note_archive_and_delete_from_the_run_page(
    browser: Any, dash: DashboardProcess, ids: tuple[Path, Ids]
) -> None:
    run_id = ids[1]["managed1"]
    browser.get(f"{dash.url}/runs/{run_id}")
    wait_for(browser, lambda d: d.find_elements(CSS, "[data-manage=rename]"))

    def answer(text: str | None) -> None:
        field = wait_for(
            browser, lambda d: d.find_elements(CSS, "#run-dialog[open] #run-dialog-input")
        )
        if text is not None:
            field[0].clear()
            field[0].send_keys(text)
        click(browser, "#run-dialog-ok")

    click(browser, "[data-manage=rename]")
    answer("renamed <b>run</b>")
    wait_for(browser, lambda d: text(d, "#run-title") == "renamed <b>run</b>")

    click(browser, "[data-manage=tag]")
    answer("best")
    tags = "return [...document.querySelectorAll('#run-tags [data-tag]')].map(e => e.dataset.tag);"
    wait_for(browser, lambda d: d.execute_script(tags) == ["keep", "old", "best"])
    click(browser, "#run-tags [data-untag='old']")
    wait_for(browser, lambda d: d.execute_script(tags) == ["keep", "best"])

    click(browser, "[data-manage=note]")
    answer("lr too high\nsee job-2")
    wait_for(browser, lambda d: d.find_elements(CSS, "#run-note"))
    assert text(browser, "#run-note") == "lr too high\nsee job-2"

    click(browser, "[data-manage=archive]")
    wait_for(browser, lambda d: d.find_elements(CSS, "#archived-flag"))
    with dash.client() as c:
        listed = [r["id"] for r in c.get("/ui/runs").json()["rows"]]
        run = c.get(f"/ui/runs/{run_id}").json()["run"]
    assert run_id not in listed  # archived runs leave the default listing
    assert run["name"] == "renamed <b>run</b>" and run["tags"] == ["keep", "best"]
    assert run["notes"] == "lr too high\nsee job-2" and run["archived"] is True
    click(browser, "[data-manage=unarchive]")
    wait_for(browser, lambda d: not d.find_elements(CSS, "#archived-flag"))

    # Delete asks first: cancelled, nothing happens; confirmed, the run is gone.
    click(browser, "[data-manage=delete]")
    wait_for(browser, lambda d: d.find_elements(CSS, "#run-dialog[open]"))
    assert run_id in (text(browser, "#run-dialog") or "")
    click(browser, "#run-dialog-cancel")
    wait_for(browser, lambda d: not d.find_elements(CSS, "#run-dialog[open]"))
    with dash.client() as c:
        assert c.get(f"/ui/runs/{run_id}").status_code == 200
    click(browser, "[data-manage=delete]")
    wait_for(browser, lambda d: d.find_elements(CSS, "#run-dialog[open]"))
    click(browser, "#run-dialog-ok")
    wait_for(browser, lambda d: urlsplit(d.current_url).path == "/runs", message="back to runs")
    with dash.client() as c:
        assert c.get(f"/ui/runs/{run_id}").status_code == 404
    assert not (ids[0] / ".whirr" / "runs" / run_id).exists()
    assert console_errors(browser) == []


def test_a_running_run_cannot_be_deleted_from_its_page(
    browser: Any, dash: DashboardProcess, ids: tuple[Path, Ids]
) -> None:
    browser.get(f"{dash.url}/runs/{ids[1]['live']}")
    button = wait_for(browser, lambda d: d.find_elements(CSS, "[data-manage=delete]"))[0]
    assert not button.is_enabled() and "while it runs" in button.get_attribute("title")
