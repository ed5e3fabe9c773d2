"""Building HTML on the server, escaped by construction: ``el("td", {"class": "num"}, x)``
escapes every text child and attribute value; only what ``el`` itself returned (a
``Markup``) goes in as it is. The server-rendered first views (``first_view``) are made
with it, so data cannot become markup there either.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from html import escape
from typing import Any

#: What a cell without a value shows (an en dash, as the scripts write it).
NONE = "\u2013"


class Markup(str):
    """HTML that is already safe (made by ``el`` or ``join``)."""


def _text(child: Any) -> str:
    if child is None or child is False:
        return ""
    if isinstance(child, Markup):
        return str(child)
    if isinstance(child, str | int | float):
        return escape(str(child))
    return "".join(_text(c) for c in child)


def el(tag: str, attrs: dict[str, Any] | None = None, *children: Any) -> Markup:
    """``<tag attrs>children</tag>``; None and False attributes are left out, True ones
    written bare."""
    parts = [tag]
    for key, value in (attrs or {}).items():
        if value is None or value is False:
            continue
        parts.append(key if value is True else f'{key}="{escape(str(value))}"')
    return Markup(f"<{' '.join(parts)}>{_text(children)}</{tag}>")


def join(*children: Any) -> Markup:
    """Several children as one piece of markup."""
    return Markup(_text(children))


#: As ``core.js`` draws them, so the script's first redraw does not change a thing.
GLYPHS = {
    "queued": "◷",
    "running": "●",
    "completed": "✓",
    "failed": "✕",
    "cancelled": "⊘",
    "timed_out": "◔",
    "idle": "○",
    "busy": "●",
    "offline": "◌",
    "stopped": "■",
}


def badge(status: str, title: str | None = None) -> Markup:
    """A status with its glyph and word (readable without colour)."""
    return el(
        "span",
        {"class": f"badge st-{status}", "title": title},
        el("span", {"class": "glyph", "aria-hidden": "true"}, GLYPHS.get(status, "•")),
        status.replace("_", " "),
    )


def when(at: datetime | None) -> Markup:
    """A ``<time>`` the page's script turns into "3m ago" (UTC until it does)."""
    if at is None:
        return Markup(NONE)
    iso = at.isoformat()
    return el("time", {"datetime": iso, "data-ago": iso}, at.strftime("%Y-%m-%d %H:%M UTC"))


def seconds(s: float | None) -> str:
    """A duration as the pages write it (``4.2s``, ``3m 05s``, ``2h 01m``)."""
    if s is None or s != s:
        return NONE
    if s < 1:
        return f"{round(s * 1000)}ms"
    if s < 60:
        return f"{s:.1f}s" if s < 10 else f"{round(s)}s"
    m, sec = divmod(int(s), 60)
    if m < 60:
        return f"{m}m {sec:02d}s"
    hours = m // 60
    if hours < 48:
        return f"{hours}h {m % 60:02d}m"
    return f"{hours // 24}d {hours % 24}h"


def value(v: Any) -> str:
    """A config or summary value as the pages write it."""
    if v is None:
        return NONE
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        return f"{v:,}"
    if isinstance(v, float):
        a = abs(v)
        if a != 0 and (a < 1e-3 or a >= 1e6):
            return f"{v:.3e}"
        return f"{float(f'{v:.5g}')!r}".removesuffix(".0") if v == v else "NaN"
    return str(v)


def card(title: str, count: int | None, content: Any, *, id_: str | None = None) -> Markup:
    """A titled section, as ``W.card`` builds it."""
    return el(
        "section",
        {"class": "card section", "id": id_},
        el(
            "div",
            {"class": "card-head"},
            el("h2", {}, title),
            el("span", {"class": "count"}, count) if count is not None else None,
        ),
        content,
    )


def table(head: list[str], rows: Iterable[Iterable[Any]], **attrs: Any) -> Markup:
    """A ``table.data`` of already-built cells (strings are escaped)."""
    return el(
        "div",
        {"class": "table-wrap"},
        el(
            "table",
            {"class": "data", **attrs},
            el("thead", {}, el("tr", {}, [el("th", {"scope": "col"}, h) for h in head])),
            el("tbody", {}, [el("tr", {}, [el("td", {}, c) for c in row]) for row in rows]),
        ),
    )


def empty(title: str, hint: Any = None) -> Markup:
    """The note a page shows where a table has no rows."""
    return el(
        "div", {"class": "empty"}, el("strong", {}, title), el("div", {}, hint) if hint else None
    )
