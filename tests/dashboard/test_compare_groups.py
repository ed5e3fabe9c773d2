"""The compare page's mean ± std over runs that share a config but for ignored keys (the
seed by default), its smoothing and its x axes (step, wall-clock time, relative time),
all kept in the address; in real headless Chromium over a real ``whirr dashboard``."""

from __future__ import annotations

import math
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

from dashboard.browser import available, chromium, console_errors, wait_for
from dashboard.demo import write_metrics
from dashboard.process import DashboardProcess
from whirr.project import init_project
from whirr.services.runs import Runs

CSS = "css selector"
#: run id -> (lr, seed, the constant loss it logs)
RUNS = {
    "a0": (0.1, 0, 1.0),
    "a1": (0.1, 1, 2.0),
    "a2": (0.1, 2, 3.0),
    "b0": (0.01, 0, 10.0),
    "b1": (0.01, 1, 20.0),
}
T0 = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)


@pytest.fixture(scope="module")
def seeds(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DashboardProcess]:
    root = tmp_path_factory.mktemp("seeds") / "proj"
    root.mkdir()
    project, _ = init_project(root)
    store = project.open_store()
    try:
        runs = Runs(store, hostname="box")
        for run_id, (lr, seed, loss) in RUNS.items():
            run_dir = project.run_dir(run_id)
            run_dir.mkdir(parents=True)
            runs.start(run_id, str(run_dir), name=run_id, config={"lr": lr, "seed": seed})
            write_metrics(
                run_dir / "metrics.jsonl",
                [{"step": s, "loss": loss} for s in range(50)],
                start=T0,
            )
            runs.finish(run_id, "completed", exit_code=0)
    finally:
        store.close()
    proc = DashboardProcess(root)
    yield proc
    proc.stop()


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    if not available():
        pytest.fail("the browser tests need chromium, chromium-driver and selenium", pytrace=False)
    with chromium() as driver:
        yield driver


def traces(browser: Any) -> list[dict[str, Any]]:
    return browser.execute_script(
        # The script builds the chart after the server-rendered first view: until then, none.
        "const el = document.getElementById('compare-chart');"
        "return ((el && el.data) || []).map(t => ({name: t.name, x: t.x, y: t.y,"
        " fill: t.fill || null, meta: t.meta || null}));"
    )


def second_x(browser: Any) -> list[Any]:
    """The second trace's x values, or none while the chart is being redrawn."""
    shown = traces(browser)
    return shown[1]["x"] if len(shown) > 1 else []


def address(browser: Any) -> dict[str, list[str]]:
    return parse_qs(urlsplit(browser.current_url).query)


def drawn(browser: Any, count: int) -> list[dict[str, Any]]:
    return wait_for(
        browser,
        lambda d: (t := traces(d)) and len(t) == count and t,
        message=f"{count} traces on the compare chart",
    )


def test_mean_and_std_band_per_group_of_seeds(browser: Any, seeds: DashboardProcess) -> None:
    browser.get(seeds.url + "/compare?runs=a0,a1,a2,b0,b1&metric=loss&group=seed")
    shown = drawn(browser, 6)  # per group: the band's upper and lower edges, the mean
    means = {t["name"]: t for t in shown if t["meta"] and "group" in t["meta"]}
    assert set(means) == {"lr=0.1 (mean of 3)", "lr=0.01 (mean of 2)"}
    a, b = means["lr=0.1 (mean of 3)"], means["lr=0.01 (mean of 2)"]
    assert a["x"] == list(range(50)) and set(a["y"]) == {2.0}
    assert set(b["y"]) == {15.0}
    edges = {t["name"]: t for t in shown if t["meta"] and "band" in t["meta"]}
    upper, lower = edges["lr=0.1 (mean of 3) +std"], edges["lr=0.1 (mean of 3) -std"]
    assert math.isclose(upper["y"][0], 2 + math.sqrt(2 / 3))
    assert math.isclose(lower["y"][0], 2 - math.sqrt(2 / 3)) and lower["fill"] == "tonexty"
    assert {y for y in edges["lr=0.01 (mean of 2) +std"]["y"]} == {20.0}

    # Ignore nothing but a key no run has: every run is a group of its own, drawn as is.
    box = browser.find_element(CSS, "#group-ignore")
    box.clear()
    box.send_keys("nothing\n")
    shown = drawn(browser, 5)
    assert sorted(t["name"] for t in shown) == [
        "lr=0.01 seed=0 (b0)",
        "lr=0.01 seed=1 (b1)",
        "lr=0.1 seed=0 (a0)",
        "lr=0.1 seed=1 (a1)",
        "lr=0.1 seed=2 (a2)",
    ]
    assert address(browser)["group"] == ["nothing"]
    browser.find_element(CSS, "#group-runs").click()  # off: plain lines, no group=
    drawn(browser, 5)
    assert "group" not in address(browser)
    assert console_errors(browser) == []


def test_smoothing_and_x_axes_are_kept_in_the_address(
    browser: Any, seeds: DashboardProcess
) -> None:
    browser.get(seeds.url + "/compare?runs=a0,b0&metric=loss")
    drawn(browser, 2)
    browser.execute_script(
        "const s = document.getElementById('smoothing'); s.value = 0.5;"
        "s.dispatchEvent(new Event('input'));"
    )
    drawn(browser, 4)  # a faint raw line under each smoothed one
    assert address(browser)["smooth"] == ["0.5"]

    def pick(value: str) -> None:
        browser.execute_script(
            "const s = document.getElementById('x-axis'); s.value = arguments[0];"
            "s.dispatchEvent(new Event('change'));",
            value,
        )

    pick("wall")
    wait_for(browser, lambda d: second_x(d)[:1] == [T0.timestamp() * 1000])
    assert address(browser)["x"] == ["wall"]
    pick("time")
    wait_for(browser, lambda d: second_x(d)[:3] == [0, 1, 2])
    assert address(browser)["x"] == ["time"]
    # Reopened from its address, the page shows the same.
    browser.get(browser.current_url)
    shown = drawn(browser, 4)
    assert shown[1]["x"][:3] == [0, 1, 2]
    assert browser.find_element(CSS, "#x-axis").get_attribute("value") == "time"
    assert browser.find_element(CSS, "#smoothing").get_attribute("value") == "0.5"
    assert console_errors(browser) == []
