"""Benchmark of the web dashboard.

Creates a project with 10,000 runs (config and summary each) and one run of 1,000,000
metric rows, serves it with ``whirr dashboard`` and prints medians for:

- the runs page and its JSON (default order, sorted by a summary column, text-filtered)
  with 10,000 runs, timed over loopback, next to the reference measured in the same run:
  decoding those 10,000 runs from the store, what each request would cost without the
  dashboard's index;
- time to first chart in headless Chromium for the 1,000,000-point run: from navigation
  start to the first metric line in the page's DOM (recorded in the page by a
  MutationObserver, so polling adds nothing), both the first line on screen (the static
  preview drawn while plotly.js compiles) and the first drawn by plotly.js (interactive),
  for each pair of
  server: cold (a fresh process, the run's 124 MB metrics.jsonl never parsed: the first
          view of that run), restarted (a fresh process with the parsed columns cached on
          disk by an earlier one) or warm (the columns in memory);
  browser: fresh (a new profile: plotly.js is downloaded and compiled) or cached (a
          profile that opened the page before: plotly.js from its cache);
  and the bytes each page load transferred;
- the bytes sent for that chart (gzipped and raw) next to the size of the metrics file.

Targets (issue 7): runs page under 200 ms on the server, first chart under 1.5 s in the
browser (what a user sees opening a run page: every server/browser pair is printed).

    .venv/bin/python tools/bench/dashboard.py [--repeat 15] [--dir DIR]
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

# This directory holds queue.py, which would shadow the standard library's queue module.
HERE = Path(__file__).resolve().parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != HERE]

import argparse  # noqa: E402
import math  # noqa: E402
import shutil  # noqa: E402
import statistics  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from datetime import UTC, datetime, timedelta  # noqa: E402

import httpx  # noqa: E402
import msgspec  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tests"))

from dashboard.browser import available, chromium, wait_for  # noqa: E402
from dashboard.process import DashboardProcess  # noqa: E402
from server_process import free_port  # noqa: E402

from whirr.dashboard import assets  # noqa: E402
from whirr.events import Pending, RunFinished, RunStarted, RunSummaryUpdated, run_stream  # noqa: E402
from whirr.project import init_project  # noqa: E402

RUNS, POINTS = 10_000, 1_000_000
BIG = "local-20240101-000000-b16b16"
T0 = datetime(2024, 1, 1, tzinfo=UTC)


def build(root: Path) -> None:
    """The project: 10,000 finished runs, then one run with a million metric rows."""
    project, _ = init_project(root)
    store = project.open_store()
    try:
        for start in range(0, RUNS, 1000):
            events: list[Pending] = []
            for i in range(start, start + 1000):
                run_id = f"local-20240101-{i:06d}-{i:06x}"
                config = {
                    "lr": 10 ** -(1 + i % 4),
                    "depth": [18, 34, 50][i % 3],
                    "optimizer": ["sgd", "adam", "adamw"][i % 3],
                    "seed": i,
                }
                events += [
                    Pending(
                        run_stream(run_id),
                        RunStarted(
                            run_id=run_id,
                            run_dir=str(project.run_dir(run_id)),
                            name=f"sweep-{i}",
                            config=config,
                            tags=[f"group-{i % 20}"],
                        ),
                    ),
                    Pending(
                        run_stream(run_id),
                        RunSummaryUpdated(
                            run_id=run_id, summary={"best_loss": 1 / (i + 1), "acc": i / RUNS}
                        ),
                    ),
                    Pending(
                        run_stream(run_id),
                        RunFinished(run_id=run_id, status="completed", exit_code=0),
                    ),
                ]
            store.append(events)
        run_dir = project.run_dir(BIG)
        run_dir.mkdir(parents=True)
        store.append(
            [
                Pending(
                    run_stream(BIG),
                    RunStarted(
                        run_id=BIG,
                        run_dir=str(run_dir),
                        name="a million points",
                        config={"lr": 0.1},
                    ),
                )
            ]
        )
    finally:
        store.close()
    encode = msgspec.json.Encoder().encode
    with (run_dir / "metrics.jsonl").open("wb") as fh:
        for i in range(POINTS):
            at = (T0 + timedelta(milliseconds=10 * i)).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
            loss = math.exp(-i / 300_000) + 0.05 * math.sin(i / 50) + (3.0 if i == 654_321 else 0)
            fh.write(
                encode({"_idx": i, "_timestamp": at, "step": i, "loss": loss, "acc": 1 - loss / 2})
                + b"\n"
            )


def timed(client: httpx.Client, path: str, repeat: int) -> float:
    """Median milliseconds of ``repeat`` GETs of ``path``."""
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        resp = client.get(path)
        times.append((time.perf_counter() - start) * 1000)
        resp.raise_for_status()
    return statistics.median(times)


def reference(root: Path, repeat: int) -> float:
    """Median milliseconds to read every run from the store (the work the index saves)."""
    from whirr.project import Project

    store = Project(root).open_store()
    try:
        times = []
        for _ in range(repeat):
            start = time.perf_counter()
            assert len(store.runs(None, None, None)) == RUNS + 1
            times.append((time.perf_counter() - start) * 1000)
        return statistics.median(times)
    finally:
        store.close()


#: Injected before any page script runs (DevTools protocol, so the page's CSP allows it):
#: records when the first metric line is in the DOM, as a preview (drawn while plotly.js
#: loads) and as a plotly chart.
WATCH = """(() => {
  const preview = () => document.querySelector("#metric-charts svg.chart-preview path");
  const plotly = () => document.querySelector("#metric-charts .scatterlayer path.js-line");
  new MutationObserver((_, observer) => {
    if (!window.__whirrPreview && preview()) window.__whirrPreview = performance.now();
    if (plotly()) { window.__whirrChart = performance.now(); observer.disconnect(); }
  }).observe(document, { childList: true, subtree: true });
})();"""
#: Bytes the page load transferred (0 for what came from the browser's cache).
TRANSFERRED = """return performance.getEntriesByType("navigation")
  .concat(performance.getEntriesByType("resource"))
  .reduce((sum, e) => sum + e.transferSize, 0);"""


def watched(driver: Any) -> Any:
    """``driver`` with ``WATCH`` in every page it opens."""
    driver.execute_cdp_cmd("Page.addScriptToEvaluateOnNewDocument", {"source": WATCH})
    return driver


def first_chart(url: str, driver: Any = None) -> tuple[float, float, int]:
    """(ms from navigation start to the first metric line drawn, to the first drawn by
    plotly, bytes transferred) for the big run's page; a fresh browser profile (nothing
    cached) unless ``driver``."""
    if driver is None:
        with chromium() as fresh:
            return first_chart(url, watched(fresh))
    driver.get("about:blank")
    driver.get(f"{url}/runs/{BIG}")
    plotly = float(
        wait_for(driver, lambda d: d.execute_script("return window.__whirrChart"), timeout=120)
    )
    preview = driver.execute_script("return window.__whirrPreview") or plotly
    sent = int(driver.execute_script(TRANSFERRED))
    # Leave the page: open, it would follow the next server on this port (its live
    # updates reconnect) and compete with the next measurement.
    driver.get("about:blank")
    return min(float(preview), plotly), plotly, sent


def written(path: Path) -> None:
    """Wait for the dashboard to write ``path`` (its column cache, in the background); an
    older dashboard without one never does, which costs a few seconds, not the figures."""
    deadline = time.monotonic() + 10
    while not path.exists() and time.monotonic() < deadline:
        time.sleep(0.05)


def chart_figures(root: Path, repeat: int) -> None:
    """Time to first chart for every server state and browser, ``repeat`` times each."""
    port = free_port()  # one origin throughout: the cached browser keeps its cache
    cache = root / ".whirr" / "cache" / "dashboard"
    npz = cache / f"{BIG}.metrics.npz"
    times: dict[tuple[str, str], list[float]] = {}
    interactive: dict[tuple[str, str], list[float]] = {}
    wire: dict[tuple[str, str], list[int]] = {}

    def measure(server: str, browser: str, url: str, driver: Any) -> None:
        ms, plotly, sent = first_chart(url, driver if browser == "cached" else None)
        times.setdefault((server, browser), []).append(ms)
        interactive.setdefault((server, browser), []).append(plotly)
        wire.setdefault((server, browser), []).append(sent)

    def start(server: str) -> DashboardProcess:
        if server == "cold":
            shutil.rmtree(cache, ignore_errors=True)
        return DashboardProcess(root, port=port)

    with chromium() as cached_browser:
        watched(cached_browser)
        dash = start("cold")
        try:
            first_chart(dash.url, cached_browser)  # the browser now has plotly.js cached
            written(npz)
        finally:
            dash.stop()
        for _ in range(repeat):
            for server in ("cold", "restarted"):
                for browser in ("fresh", "cached"):
                    dash = start(server)
                    try:
                        measure(server, browser, dash.url, cached_browser)
                        if server == "cold":  # the next restart finds its cache
                            written(npz)
                    finally:
                        dash.stop()
        dash = start("restarted")
        try:
            first_chart(dash.url, cached_browser)  # the columns are in memory now
            for _ in range(repeat):
                for browser in ("fresh", "cached"):
                    measure("warm", browser, dash.url, cached_browser)
        finally:
            dash.stop()
    print(
        f"\nfirst chart of a {POINTS:,}-point run in headless Chromium "
        f"(median of {repeat}; ms from navigation start; target 1,500)\n"
        "  first chart: the metric lines on screen (a static preview until plotly.js has\n"
        "  compiled); interactive: the same lines drawn by plotly (hover, zoom)"
    )
    print(
        f"  {'server':<50} {'browser':<8} {'first chart':>11} {'(min-max)':>11}"
        f" {'interactive':>11} {'bytes sent':>12}"
    )
    labels = {
        "cold": "cold: first view of the run (parses metrics.jsonl)",
        "restarted": "restarted: columns cached on disk",
        "warm": "warm: columns in memory",
    }
    for key, values in times.items():
        spread = f"({min(values):.0f}-{max(values):.0f})"
        print(
            f"  {labels[key[0]]:<50} {key[1]:<8} {statistics.median(values):11.0f} {spread:>11} "
            f"{statistics.median(interactive[key]):11.0f} {statistics.median(wire[key]):>12,.0f}"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeat", type=int, default=15)
    parser.add_argument("--dir", type=Path, default=None, help="keep the project here")
    args = parser.parse_args()
    base = args.dir or Path(tempfile.mkdtemp(prefix="whirr-bench-dash-"))
    root = base / "project"
    if not (root / ".whirr").exists():
        root.mkdir(parents=True, exist_ok=True)
        start = time.perf_counter()
        build(root)
        print(
            f"built {RUNS:,} runs and a {POINTS:,}-point run in {time.perf_counter() - start:.1f} s"
        )
    dash = DashboardProcess(root)
    try:
        with httpx.Client(base_url=dash.url, timeout=120) as c:
            start = time.perf_counter()
            c.get("/ui/runs").raise_for_status()
            cold = (time.perf_counter() - start) * 1000
            print(f"\nruns with {RUNS:,} runs (median of {args.repeat}, ms)")
            print(f"  first /ui/runs after start (loads the index)   {cold:8.1f}")
            page = timed(c, "/runs", args.repeat)
            print(f"  runs page (HTML)                                {page:8.1f}")
            newest = timed(c, "/ui/runs", args.repeat)
            print(f"  /ui/runs, newest first, 100 rows                {newest:8.1f}")
            print(
                f"  /ui/runs sorted by summary.best_loss            "
                f"{timed(c, '/ui/runs?sort=summary.best_loss&order=asc', args.repeat):8.1f}"
            )
            print(
                f"  /ui/runs filtered by text 'sweep-99'            "
                f"{timed(c, '/ui/runs?q=sweep-99', args.repeat):8.1f}"
            )
            print(
                f"  reference: decode all runs from the store       "
                f"{reference(root, max(3, args.repeat // 3)):8.1f}"
            )
            if not available():
                print("\n(chromium/selenium missing: the browser figures are skipped)")
            path = f"/ui/runs/{BIG}/series?x=step&points=720"
            raw = c.get(path, headers={"Accept-Encoding": "identity"})
            zipped = c.get(path, headers={"Accept-Encoding": "gzip"})
            size = (root / ".whirr" / "runs" / BIG / "metrics.jsonl").stat().st_size
            wire = zipped.num_bytes_downloaded
            points = sum(len(s["x"]) for s in raw.json()["series"])
            print(f"\nbytes for that run's charts (2 metrics, {points:,} points drawn)")
            print(f"  gzipped on the wire          {wire:>12,}")
            print(f"  uncompressed JSON            {len(raw.content):>12,}")
            print(f"  reference: metrics.jsonl     {size:>12,}")
            plotly = c.get(
                f"/static/vendor/plotly.min.js?v={assets.version()}",
                headers={"Accept-Encoding": "gzip"},
            )
            print(
                f"  plotly.js, gzipped (once per browser: cached a year, no revalidation)"
                f" {plotly.num_bytes_downloaded:,}"
            )
    finally:
        dash.stop()
    if available():
        chart_figures(root, max(3, args.repeat // 3))
        if args.dir is None:
            shutil.rmtree(base, ignore_errors=True)


if __name__ == "__main__":
    main()
