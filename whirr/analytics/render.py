"""Printing analytics results: aligned plain tables (styled on a terminal), CSV and JSON.

CSV and JSON are exact: a float prints as the shortest text that reads back as the same
float (Python's ``repr``, DuckDB's own format too), timestamps as UTC ISO-8601 with ``Z``
like the files. Tables are for eyes: the comparison table rounds floats to 6 significant
digits (``-o csv``/``-o json`` give every digit).
"""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

import click
import msgspec

_json = msgspec.json.Encoder(decimal_format="number")


@dataclass(frozen=True)
class Cell:
    """Table text with an optional click style (``{"fg": "green", "bold": True}``)."""

    text: str
    style: dict[str, Any] | None = None


def iso(at: datetime) -> str:
    """UTC ISO-8601 with microseconds and ``Z``, as whirr writes ``_timestamp``."""
    return at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def plain(value: Any) -> Any:
    """``value`` made JSON-ready: timestamps as ISO text, decimals and structs kept."""
    if isinstance(value, datetime):
        return iso(value) if value.tzinfo is not None else value.isoformat()
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, dict):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [plain(v) for v in value]
    return value


def text(value: Any, digits: int | None = None) -> str:
    """One value as CSV/table text: empty for null, ``repr`` for floats (or ``digits``
    significant digits), ``true``/``false``, JSON for lists and structs."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        if digits is not None and value == value and abs(value) != float("inf"):
            return f"{value:.{digits}g}"
        return repr(value)
    if isinstance(value, int | Decimal):
        return str(value)
    if isinstance(value, str):
        return value
    if isinstance(value, datetime | date):
        return str(plain(value))
    return _json.encode(plain(value)).decode()


def csv_text(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    """CSV with a header line; values through :func:`text`."""
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(headers)
    for row in rows:
        writer.writerow([text(v) for v in row])
    return buf.getvalue()


def json_text(value: Any) -> str:
    """``value`` as JSON (timestamps as ISO text, NaN/inf as null)."""
    return _json.encode(plain(value)).decode()


def records(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> list[dict[str, Any]]:
    """Rows as objects keyed by header."""
    return [dict(zip(headers, row, strict=True)) for row in rows]


def table_text(headers: Sequence[str], rows: Sequence[Sequence[Cell | str]]) -> str:
    """A plain aligned table; styles apply on a terminal only (click strips them else)."""
    cells = [[c if isinstance(c, Cell) else Cell(c) for c in row] for row in rows]
    widths = [len(h) for h in headers]
    for row in cells:
        for i, cell in enumerate(row):
            widths[i] = max(widths[i], len(cell.text))
    lines = ["  ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True)).rstrip()]
    for row in cells:
        parts = []
        last = len(row) - 1
        for i, (cell, width) in enumerate(zip(row, widths, strict=True)):
            padded = cell.text if i == last else cell.text.ljust(width)
            parts.append(click.style(padded, **cell.style) if cell.style else padded)
        lines.append("  ".join(parts).rstrip())
    return "\n".join(lines)
