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


def comparison_table(comp: Comparison, width: int | None = None) -> str:
    """Runs as columns, fields as rows; differing config keys first and marked ``≠``, the
    best value of each summary/metric row marked ``*``; a legend below. With ``width``
    (a terminal's columns), runs that do not fit beside each other go into further
    blocks below, each with the field names again, and overlong cells are cut (``…``)."""
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
    if width is None:
        out = table_text(headers, lines)
    else:
        out = "\n\n".join(table_text(*block) for block in _fit(headers, lines, width))
    joined = "; ".join(legend)
    if width is not None and len(joined) > width:
        joined = "\n".join(legend)  # one note a line, to fit
    return out + ("\n\n" + joined if legend else "")


#: Spaces between table columns (as ``table_text`` joins them).
_GAP = 2
#: The narrowest a cut column gets, however narrow the terminal.
_MIN_COLUMN = 8


def _fit(
    headers: list[str], lines: list[list[Cell | str]], width: int
) -> list[tuple[list[str], list[list[Cell]]]]:
    """The table as blocks of run columns that each fit in ``width`` characters."""
    label_width = max(len(_text(c)) for c in [headers[0], *(line[0] for line in lines)])
    label_width = min(label_width, max(_MIN_COLUMN, width // 3))
    room = max(_MIN_COLUMN, width - label_width - _GAP)
    widths = [
        min(room, max(len(_text(c)) for c in [headers[i], *(line[i] for line in lines)]))
        for i in range(1, len(headers))
    ]
    groups: list[list[int]] = [[]]
    used = label_width
    for i, column_width in enumerate(widths, start=1):
        if groups[-1] and used + _GAP + column_width > width:
            groups.append([])
            used = label_width
        groups[-1].append(i)
        used += _GAP + column_width
    cuts = [label_width, *widths]
    return [
        (
            [_cut(headers[i], cuts[i]).text for i in [0, *group]],
            [[_cut(line[i], cuts[i]) for i in [0, *group]] for line in lines],
        )
        for group in groups
    ]


def _text(cell: Cell | str) -> str:
    return cell.text if isinstance(cell, Cell) else cell


def _cut(cell: Cell | str, width: int) -> Cell:
    """``cell`` cut to ``width`` characters, its last one ``…`` when anything was cut."""
    cell = cell if isinstance(cell, Cell) else Cell(cell)
    if len(cell.text) <= width:
        return cell
    return Cell(cell.text[: width - 1] + "…", cell.style)


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
