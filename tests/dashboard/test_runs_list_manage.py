"""The runs list's row menu in real headless Chromium (issue 19 item 1): rename, tags,
note, archive and unarchive (the Archived box lists archived runs), delete after a
confirmation, each through the dashboard's POST /ui/runs/<id>/... with the page's CSRF
token; a running run's Delete is disabled."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

from dashboard import run_page_project
from dashboard.browser import available, chromium, console_errors, wait_for
from dashboard.process import DashboardProcess
from dashboard.test_run_page import click, text

if not available():
    pytest.fail(
        "the browser tests need chromium, chromium-driver and selenium: "
        "apt-get install -y chromium chromium-driver && pip install selenium",
        pytrace=False,
    )

CSS = "css selector"
LISTED = "return [...document.querySelectorAll('tr[data-run]')].map(r => r.dataset.run);"


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, Any]]:
    root = tmp_path_factory.mktemp("runs-manage") / "proj"
    root.mkdir()
    return root, run_page_project.build(root)


@pytest.fixture(scope="module")
def dash(project: tuple[Path, dict[str, Any]]) -> Iterator[DashboardProcess]:
    proc = DashboardProcess(project[0])
    yield proc
    proc.stop()


@pytest.fixture(scope="module")
def browser(dash: DashboardProcess) -> Iterator[Any]:
    with chromium() as driver:
        yield driver


def listed(browser: Any) -> list[str]:
    return browser.execute_script(LISTED)  # type: ignore[no-any-return]


def choose(browser: Any, run_id: str, act: str) -> None:
    """Open the run's row menu and pick ``act``."""
    click(browser, f'[data-manage-run="{run_id}"]')
    wait_for(browser, lambda d: d.find_elements(CSS, "#run-menu[open]"), message="the menu")
    click(browser, f"#run-menu [data-act={act}]")


def answer(browser: Any, value: str | None) -> None:
    """Fill the form the menu's item opened (``None``: leave it) and confirm."""
    field = wait_for(browser, lambda d: d.find_elements(CSS, "#run-dialog[open] #run-dialog-input"))
    if value is not None:
        field[0].clear()
        field[0].send_keys(value)
    click(browser, "#run-dialog-ok")


def api_run(dash: DashboardProcess, run_id: str) -> Any:
    with dash.client() as c:
        return c.get(f"/ui/runs/{run_id}").json()["run"]


def test_manage_runs_from_the_runs_list(
    browser: Any, dash: DashboardProcess, project: tuple[Path, dict[str, Any]]
) -> None:
    root, ids = project
    run_id, other = ids["managed1"], ids["managed2"]
    browser.get(f"{dash.url}/runs")
    wait_for(browser, lambda d: run_id in listed(d) and other in listed(d), message="runs")

    choose(browser, run_id, "rename")
    answer(browser, "from <b>the list</b>")
    row = f'tr[data-run="{run_id}"]'
    wait_for(browser, lambda d: "from <b>the list</b>" in (text(d, row) or ""), message="name")

    choose(browser, run_id, "tags")
    field = wait_for(browser, lambda d: d.find_elements(CSS, "#run-dialog[open] #run-dialog-input"))
    assert field[0].get_attribute("value") == "keep, old"
    answer(browser, "keep, best , ")
    wait_for(browser, lambda d: api_run(dash, run_id)["tags"] == ["keep", "best"], message="tags")

    choose(browser, run_id, "note")
    answer(browser, "tried from the list")
    wait_for(browser, lambda d: api_run(dash, run_id)["notes"] == "tried from the list")

    # Archive: the run leaves the list; the Archived box lists it, where it comes back.
    choose(browser, run_id, "archive")
    wait_for(browser, lambda d: run_id not in listed(d) and other in listed(d), message="hidden")
    assert api_run(dash, run_id)["archived"] is True
    click(browser, "#show-archived")
    wait_for(browser, lambda d: listed(d) == [run_id], message="the archived runs")
    assert parse_qs(urlsplit(browser.current_url).query)["archived"] == ["only"]
    choose(browser, run_id, "unarchive")
    wait_for(browser, lambda d: listed(d) == [], message="no archived run left")
    assert api_run(dash, run_id)["archived"] is False
    click(browser, "#show-archived")
    wait_for(browser, lambda d: run_id in listed(d), message="listed again")

    # A running run cannot be deleted; closing the menu does nothing.
    click(browser, f'[data-manage-run="{ids["live"]}"]')
    button = wait_for(browser, lambda d: d.find_elements(CSS, "#run-menu[open] [data-act=delete]"))
    assert not button[0].is_enabled() and "while it runs" in button[0].get_attribute("title")
    click(browser, "#run-menu-close")
    wait_for(browser, lambda d: not d.find_elements(CSS, "#run-menu[open]"))

    # Delete asks first: cancelled, nothing happens; confirmed, the run and its files go.
    choose(browser, run_id, "delete")
    wait_for(browser, lambda d: d.find_elements(CSS, "#run-dialog[open]"))
    assert run_id in (text(browser, "#run-dialog") or "")
    click(browser, "#run-dialog-cancel")
    wait_for(browser, lambda d: not d.find_elements(CSS, "#run-dialog[open]"))
    assert api_run(dash, run_id)["id"] == run_id
    choose(browser, run_id, "delete")
    click(browser, "#run-dialog[open] #run-dialog-ok")
    wait_for(browser, lambda d: run_id not in listed(d) and other in listed(d), message="deleted")
    with dash.client() as c:
        assert c.get(f"/ui/runs/{run_id}").status_code == 404
    assert not (root / ".whirr" / "runs" / run_id).exists()
    assert console_errors(browser) == []
