"""Issue 21's dashboard items, against a real ``whirr dashboard`` process: the queue and
compare pages are useful before any script runs (their first view is in the HTML), the
overview's empty cards each say how to queue a job and its line under the title is plain
words, and the runs table names its config and summary column groups. In real headless
Chromium where a script has to run."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from dashboard.browser import available, chromium, console_errors, wait_for
from dashboard.process import DashboardProcess
from whirr.project import init_project

Ids = tuple[Path, dict[str, Any]]
CSS = "css selector"
HINT = "Queue one with whirr submit -- python train.py"


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    if not available():
        pytest.fail("the browser tests need chromium, chromium-driver and selenium", pytrace=False)
    with chromium() as driver:
        yield driver


@pytest.fixture(scope="module")
def bare(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DashboardProcess]:
    """A dashboard over a project with no job, run or worker."""
    root = tmp_path_factory.mktemp("bare") / "proj"
    root.mkdir()
    init_project(root)
    proc = DashboardProcess(root)
    yield proc
    proc.stop()


def main_of(html: str) -> str:
    found = re.search(r'<main id="main"[^>]*>(.*)</main>', html, re.S)
    assert found, html
    return found.group(1)


def test_the_queue_page_html_lists_the_jobs(dashboard: DashboardProcess, project: Ids) -> None:
    with dashboard.client() as c:
        main = main_of(c.get("/queue").text)
    assert "Loading" not in main
    assert "1 running · 3 queued" in main
    for job in project[1]["queued_jobs"]:
        assert f'data-job="{job}" data-status="queued"' in main
    for name in ("eval-val", "eval-test", "eval-ood", "resnet-sweep-5"):
        assert name in main
    failed = project[1]["jobs"]["failed"]
    assert f'data-job="{failed}" data-status="failed"' in main
    assert 'title="CUDA out of memory"' in main  # the error, on the status badge


def test_the_compare_page_html_has_the_diff_and_a_chart(dashboard: DashboardProcess) -> None:
    with dashboard.client() as c:
        main = main_of(c.get("/compare?runs=job-1,job-3&metric=val/loss").text)
        empty = main_of(c.get("/compare").text)
        unknown = c.get("/compare?runs=nope")
    assert "Loading" not in main
    assert "2 runs" in main and "resnet-sweep-0" in main and "resnet-sweep-2" in main
    assert 'id="diff-table"' in main
    assert 'data-key="lr" data-group="config"' in main
    assert 'data-key="best_val_loss" data-group="summary"' in main
    lines = re.findall(r'<polyline points="([^"]+)"[^>]*data-run="(job-[13])"', main)
    assert [run for _, run in lines] == ["job-1", "job-3"]
    assert all(len(points.split()) == 60 for points, _ in lines)  # val/loss: 60 points
    assert "val/loss" in main
    assert "Pick runs to compare" in empty
    # An unknown run is the script's to report; the page itself still opens.
    assert unknown.status_code == 200 and "Could not compare these runs" in unknown.text


def test_the_first_view_escapes_values(dashboard: DashboardProcess, project: Ids) -> None:
    with dashboard.client() as c:
        main = main_of(c.get(f"/compare?runs={project[1]['local_run']},job-1").text)
    assert "notebook &lt;b&gt;probe&lt;/b&gt;" in main
    assert "<b>" not in main


@pytest.mark.parametrize("path", ["/queue", "/compare?runs=job-1,job-3"])
def test_the_script_takes_over_the_first_view(
    browser: Any, dashboard: DashboardProcess, path: str
) -> None:
    browser.get(dashboard.url + path)
    # The script's own controls appear (the server-rendered view has none).
    marker = "input[type=search]"
    wait_for(browser, lambda d: d.find_elements(CSS, marker), message=f"{marker} on {path}")
    if path.startswith("/compare"):
        wait_for(
            browser,
            lambda d: d.execute_script(
                "const el = document.getElementById('compare-chart');"
                " return el && el.data && el.data.length;"
            ),
            message="the chart drawn by the script",
        )
        assert not browser.find_elements(CSS, ".server-preview")
    assert console_errors(browser) == []


def test_an_empty_overview_says_how_to_queue_in_both_cards(
    browser: Any, bare: DashboardProcess
) -> None:
    browser.get(bare.url + "/")
    wait_for(browser, lambda d: d.find_elements(CSS, "[data-count=running]"))
    cards = {
        e.find_element(CSS, "h2").text: e.text for e in browser.find_elements(CSS, "section.card")
    }
    assert HINT in cards["Running now"].replace("\n", " ")
    assert HINT in cards["Next in queue"].replace("\n", " ")
    assert browser.find_element(CSS, ".page-head .sub").text == "Nothing running or queued"
    assert console_errors(browser) == []


def test_the_overview_says_what_runs_in_words(browser: Any, dashboard: DashboardProcess) -> None:
    browser.get(dashboard.url + "/")
    sub = wait_for(browser, lambda d: d.find_elements(CSS, ".page-head .sub"))[0]
    # One job running (singular) and three waiting; no "active jobs", no log position.
    assert sub.text == "1 job running, 3 waiting"


def test_the_runs_table_names_its_column_groups(browser: Any, dashboard: DashboardProcess) -> None:
    browser.get(dashboard.url + "/runs")
    groups = wait_for(browser, lambda d: d.find_elements(CSS, "thead tr.col-groups th.col-group"))
    assert [g.text for g in groups] == ["CONFIG", "SUMMARY"]  # uppercased by the CSS
    spans = [int(g.get_attribute("colspan")) for g in groups]
    heads = browser.find_elements(CSS, "thead tr:last-child th")
    config = [h for h in heads if "group-config" in (h.get_attribute("class") or "")]
    summary = [h for h in heads if "group-summary" in (h.get_attribute("class") or "")]
    assert spans == [len(config), len(summary)] and config and summary
    assert console_errors(browser) == []
