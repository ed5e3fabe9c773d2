"""A comparison as text: a side-by-side table, CSV (one row per run) or JSON."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from whirr.analytics.compare import Comparison, Row
from whirr.analytics.render import Cell, csv_text, json_text, table_text, text
from whirr.clock import human_duration as duration
from whirr.clock import local_time

DIFFERS = "≠"
BEST = "*"
_BEST_STYLE = {"fg": "green", "bold": True}
_DIFF_STYLE = {"fg": "yellow"}


def comparison_table(comp: Comparison) -> str:
    """Runs as columns, fields as rows; differing config keys first and marked ``≠``, the
    best value of each summary/metric row marked ``*``; a legend below."""
    headers = ["", *(run.id for run in comp.runs)]
    lines: list[list[Cell | str]] = []
    for row in comp.rows:
        label = _label(row, comp.at)
        style = _DIFF_STYLE if row.differs else None
        cells: list[Cell | str] = [Cell(f"{label} {DIFFERS}" if row.differs else label, style)]
        for i, value in enumerate(row.values):
            shown = _shown(row, value)
            if row.best and row.best[i]:
                cells.append(Cell(f"{shown} {BEST}", _BEST_STYLE))
            else:
                cells.append(Cell(shown, style))
        lines.append(cells)
    legend = []
    if any(r.differs for r in comp.rows):
        legend.append(f"{DIFFERS} config differs between runs")
    if any(r.goal for r in comp.rows):
        legend.append(f"{BEST} best (min for loss/error-like names, max otherwise; --goal)")
    out = table_text(headers, lines)
    return out + ("\n\n" + "; ".join(legend) if legend else "")


def comparison_csv(comp: Comparison) -> str:
    """One row per run: id, run fields, then ``config.*``, ``summary.*``, ``metrics.*``."""
    headers = ["id", *(row.label for row in comp.rows)]
    rows = [[run.id, *(row.values[i] for row in comp.rows)] for i, run in enumerate(comp.runs)]
    return csv_text(headers, rows)


def comparison_json(comp: Comparison) -> str:
    """The comparison as one JSON object (see ``Comparison.to_dict``)."""
    return json_text(comp.to_dict())


def _label(row: Row, at: str) -> str:
    if row.section == "metrics":
        return f"{row.label} ({at})"
    return "duration" if row.key == "duration_seconds" else row.label


def _shown(row: Row, value: Any) -> str:
    if value is None:
        return "-"
    if row.key == "duration_seconds" and row.section == "run":
        return duration(value)
    if isinstance(value, datetime):
        return local_time(value)
    return text(value, digits=6)
