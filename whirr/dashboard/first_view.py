"""The first view of the queue and compare pages, rendered on the server: the page is
useful (its tables, a preview of the chart) before any script has run, and its script
then takes over, drawing the same things live. Built with ``markup.el``, which escapes
every value.
"""

from __future__ import annotations

import asyncio
import re
from typing import Any
from urllib.parse import quote

from whirr.dashboard import views
from whirr.dashboard.markup import NONE, Markup, badge, card, el, empty, join, seconds, value, when
from whirr.dashboard.series import Columns
from whirr.dashboard.source import Source
from whirr.services.errors import WhirrError
from whirr.wire import schemas

#: As ``charts.js`` colours runs (Okabe-Ito based).
PALETTE = (
    "#4f6bed",
    "#e69f00",
    "#009e73",
    "#cc79a7",
    "#56b4e9",
    "#d55e00",
    "#8e6fd8",
    "#f0c400",
    "#2aa198",
    "#b0453a",
    "#7f8c8d",
    "#1f9bd7",
)
#: Points of each line in the server-drawn preview (the script asks for more).
PREVIEW_POINTS = 300
SUBMIT_HINT = join("Queue one with ", el("code", {}, "whirr submit -- python train.py"))


def page_head(title: str, sub: str) -> Markup:
    """The page's title and the line under it."""
    return el(
        "div",
        {"class": "page-head"},
        el("div", {}, el("h1", {}, title), el("div", {"class": "sub"}, sub)),
    )


def plural(n: int, word: str) -> str:
    """``1 run``, ``2 runs``."""
    return f"{n:,} {word}{'' if n == 1 else 's'}"


# -- queue ------------------------------------------------------------------------------
def _job_name(job: schemas.Job) -> Markup:
    name = job.name or (job.command_argv[0] if job.command_argv else f"job {job.id}")
    return el(
        "div",
        {},
        el("div", {"class": "run-name ellipsis"}, name),
        el("div", {"class": "run-id"}, job.run_id),
    )


def _command(job: schemas.Job) -> Markup:
    text = " ".join(job.command_argv)
    return el("span", {"title": text}, text)


def _job_rows(jobs: list[schemas.Job], ended: bool) -> list[Markup]:
    rows = []
    for j in jobs:
        if ended:
            took = (
                seconds((j.finished_at - j.started_at).total_seconds())
                if j.started_at and j.finished_at
                else NONE
            )
            cells = [
                badge(j.status, j.error),
                _job_name(j),
                el("span", {"class": "cmd"}, _command(j)),
                NONE if j.exit_code is None else str(j.exit_code),
                when(j.finished_at),
                took,
                el("a", {"href": f"/runs/{quote(j.run_id)}"}, "open"),
            ]
        else:
            cells = [
                badge(j.status),
                _job_name(j),
                el("span", {"class": "cmd"}, _command(j)),
                j.worker_id or NONE,
                str(j.attempt),
                when(j.created_at),
            ]
        rows.append(
            el(
                "tr",
                {"data-job": j.id, "data-status": j.status},
                el("td", {"class": "mono"}, el("span", {"id": f"job-{j.id}"}, j.id)),
                [el("td", {}, c) for c in cells],
            )
        )
    return rows


def _jobs_table(head: list[str], rows: list[Markup]) -> Markup:
    return el(
        "div",
        {"class": "table-wrap"},
        el(
            "table",
            {"class": "data"},
            el("thead", {}, el("tr", {}, [el("th", {"scope": "col"}, h) for h in head])),
            el("tbody", {}, rows),
        ),
    )


def queue(data: dict[str, Any]) -> Markup:
    """The queue page: active jobs (running first) and the recently ended."""
    active: list[schemas.Job] = data["active"]
    ended: list[schemas.Job] = data["ended"]
    queued = sum(1 for j in active if j.status == "queued")
    running = len(active) - queued
    active_table = (
        _jobs_table(
            ["#", "Status", "Name", "Command", "Worker", "Attempt", "Queued"],
            _job_rows(active, ended=False),
        )
        if active
        else empty("No active jobs", SUBMIT_HINT)
    )
    ended_table = (
        _jobs_table(
            ["#", "Status", "Name", "Command", "Exit", "Ended", "Duration", "Run"],
            _job_rows(ended, ended=True),
        )
        if ended
        else empty("No job has ended yet")
    )
    return join(
        page_head("Queue", f"{running:,} running · {queued:,} queued"),
        card("Active", len(active), active_table),
        card("Recently ended", len(ended), ended_table),
    )


# -- compare ----------------------------------------------------------------------------
def default_metric(keys: list[str]) -> str:
    """The metric the compare page shows first (as ``compare.js`` picks it)."""
    for key in keys:
        if re.search(r"(^|/|_)loss$", key) and "val" not in key:
            return key
    for key in keys:
        if re.search(r"loss|acc", key):
            return key
    return keys[0] if keys else ""


def _best(key: str, values: list[Any]) -> float | None:
    nums = [v for v in values if isinstance(v, int | float) and not isinstance(v, bool)]
    if len(nums) < 2:
        return None
    lower = re.search(r"loss|err|perplex|time|mse|mae|rmse", key, re.I)
    return min(nums) if lower else max(nums)


def diff(data: dict[str, Any]) -> Markup:
    """The config differences and the summaries, one column per run (``#diff-table``)."""
    runs = data["runs"]
    differing = [r for r in data["config_diff"] if r["differs"]]
    width = len(runs) + 1

    def sep(label: str) -> Markup:
        return el("tr", {}, el("td", {"colspan": width, "class": "hint"}, label))

    def line(key: str, values: list[Any], group: str, differs: bool) -> Markup:
        top = _best(key, values) if group == "summary" else None
        cells = []
        for v in values:
            cls = [
                "num",
                "mono",
                "diff" if differs else "",
                "best" if top is not None and v == top else "",
            ]
            cells.append(el("td", {"class": " ".join(c for c in cls if c)}, value(v)))
        return el(
            "tr", {"data-key": key, "data-group": group}, el("td", {"class": "mono"}, key), cells
        )

    summary_keys: list[str] = data["summary_keys"]
    head = el(
        "tr",
        {},
        el("th", {}, "Key"),
        [el("th", {"class": "num"}, r["name"] or r["id"]) for r in runs],
    )
    body = [
        el(
            "tr",
            {},
            el("td", {"class": "muted"}, "status"),
            [el("td", {"class": "num"}, badge(r["status"])) for r in runs],
        ),
        sep(f"Config ({len(differing)} differing keys)"),
        [line(r["key"], r["values"], "config", True) for r in differing]
        or el("tr", {}, el("td", {"colspan": width, "class": "faint"}, "No differences")),
    ]
    if summary_keys:
        body.append(sep("Summary (best highlighted)"))
        body.extend(
            line(k, [r["summary"].get(k) for r in runs], "summary", False) for k in summary_keys
        )
    return el(
        "div",
        {"class": "table-wrap"},
        el(
            "table",
            {"class": "data", "id": "diff-table"},
            el("thead", {}, head),
            el("tbody", {}, body),
        ),
    )


def preview_svg(series: list[dict[str, Any]], width: int = 960, height: int = 300) -> Markup:
    """A static chart of each run's line (no axes' labels beyond the range): what the
    metric looks like before the page's script draws it properly."""
    pad = 8
    xs = [x for s in series for x in s["x"] if x is not None]
    ys = [y for s in series for y in s["y"] if y is not None and y == y]
    if not xs or not ys:
        return empty("No points yet")
    x0, x1, y0, y1 = min(xs), max(xs), min(ys), max(ys)
    sx = (width - 2 * pad) / ((x1 - x0) or 1)
    sy = (height - 2 * pad) / ((y1 - y0) or 1)
    lines = []
    for i, s in enumerate(series):
        pts = " ".join(
            f"{pad + (x - x0) * sx:.1f},{height - pad - (y - y0) * sy:.1f}"
            for x, y in zip(s["x"], s["y"], strict=False)
            if x is not None and y is not None and y == y
        )
        lines.append(
            el(
                "polyline",
                {
                    "points": pts,
                    "fill": "none",
                    "stroke": PALETTE[i % len(PALETTE)],
                    "stroke-width": "1.8",
                    "data-run": s["run"],
                },
            )
        )
    return el(
        "svg",
        {
            "class": "chart-preview server-preview",
            "viewBox": f"0 0 {width} {height}",
            "preserveAspectRatio": "none",
            "role": "img",
            "aria-label": f"{series[0]['key']}: {len(series)} runs, "
            f"y from {value(y0)} to {value(y1)}",
            "width": "100%",
            "height": str(height),
        },
        lines,
    )


def _draw(columns: Columns, key: str, x: str) -> dict[str, Any]:
    with columns.lock:
        return columns.series(key, x, PREVIEW_POINTS, "minmax")


async def compare(src: Source, ids: list[str], metric: str | None, x: str) -> Markup:
    """The compare page: the runs, a static preview of the metric, the config diff."""
    if not ids:
        return join(
            page_head("Compare", ""),
            empty(
                "Pick runs to compare",
                join("Select them on the ", el("a", {"href": "/runs"}, "runs page"), "."),
            ),
        )
    try:
        data = await views.compare_data(src, ids)
    except WhirrError as exc:  # the script says it again, and drops the bad run
        return join(page_head("Compare", ""), empty("Could not compare these runs", str(exc)))
    keys: list[str] = data["metric_keys"]
    key = metric if metric in keys else default_metric(keys)
    series = []
    for run in data["runs"]:
        if not key:
            break
        columns = await src.columns(run["id"], "metrics")
        drawn = await asyncio.get_running_loop().run_in_executor(
            None, _draw, columns, key, x if x in views.X_AXES else "step"
        )
        series.append({**drawn, "run": run["id"], "key": key})
    chips = [
        el(
            "span",
            {"class": "run-chip", "data-run": r["id"]},
            el("span", {"class": "swatch", "style": f"background:{PALETTE[i % len(PALETTE)]}"}),
            el("a", {"href": f"/runs/{quote(r['id'])}"}, r["name"] or r["id"]),
        )
        for i, r in enumerate(data["runs"])
    ]
    chart = preview_svg(series) if series else empty("These runs logged no metrics")
    return join(
        page_head("Compare", plural(len(data["runs"]), "run")),
        el("div", {"class": "toolbar"}, el("div", {"class": "picked"}, chips)),
        el(
            "section",
            {"class": "card section"},
            el(
                "div",
                {"class": "card-head"},
                el("h2", {}, "Metric"),
                el("span", {"class": "count"}, key),
            ),
            el("div", {"class": "card-body"}, el("div", {"class": "chart big"}, chart)),
        ),
        card("Config and summary", None, diff(data)),
    )
