"""Generate docs/events.md, the event catalogue, from the event Structs (`make docs`).

Each event's tag, purpose (its docstring), fields with types and defaults, and its golden
fixture as an example. tests/unit/test_event_docs.py fails when the file is stale.
"""

from __future__ import annotations

import inspect
import sys
import types
import typing
from pathlib import Path

import msgspec

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from whirr.events import EVENT_TYPES, TAGS  # noqa: E402

OUT = ROOT / "docs" / "events.md"
FIXTURES = ROOT / "tests" / "fixtures" / "events"

INTRO = """\
# Event catalogue

Generated from `whirr/events/` by `make docs` (tools/gen_event_docs.py); do not edit by hand.

Every state change in whirr is one of these events, appended to the log with an envelope:
`position` (the log's sequence number), `recorded_at` (UTC), `stream` (`job-<id>`,
`run-<run_id>`, `worker-<id>`, ...) and the event itself, whose `type` field is its tag.
Projections fold them into the job, run and worker views; `whirr events` prints them.

Rules: a tag is never reused and a field never changes type; events evolve only by adding
fields with defaults at the end. Each tag keeps a golden example under
`tests/fixtures/events/` that must keep decoding forever (the examples below are those files).
"""


def _number(value: float) -> str:
    """A bound as people write it (``2^63-1`` rather than its 19 digits)."""
    for power in (63, 31):
        if value == 2**power - 1:
            return f"2^{power}-1"
        if value == -(2**power):
            return f"-2^{power}"
    return f"{value:_}".replace("_", " ") if isinstance(value, int) else f"{value:g}"


def _bounds(meta: msgspec.Meta) -> str:
    """``[1, 2^63-1]``-style range of a ``msgspec.Meta`` (``(0, 10]`` when exclusive)."""
    low = (
        f"[{_number(meta.ge)}"
        if meta.ge is not None
        else f"({_number(meta.gt)}"
        if meta.gt is not None
        else "(-inf"
    )
    high = (
        f"{_number(meta.le)}]"
        if meta.le is not None
        else f"{_number(meta.lt)})"
        if meta.lt is not None
        else "inf)"
    )
    if meta.min_length is not None or meta.max_length is not None:
        return f"length {meta.min_length or 0}..{_number(meta.max_length or 0) or 'any'}"
    return f"{low}, {high}"


def _type_text(annotation: object) -> str:
    origin = typing.get_origin(annotation)
    args = typing.get_args(annotation)
    if origin is typing.Annotated:
        metas = [m for m in args[1:] if isinstance(m, msgspec.Meta)]
        return " ".join([_type_text(args[0]), *(_bounds(m) for m in metas)])
    if origin in (typing.Union, types.UnionType):
        return " | ".join(_type_text(a) for a in args)
    if origin is typing.Literal:
        return str(annotation).replace("typing.", "")
    if origin is not None:
        return f"{origin.__name__}[{', '.join(_type_text(a) for a in args)}]"
    if annotation is type(None):
        return "None"
    if isinstance(annotation, type):
        return annotation.__name__
    return str(annotation).replace("typing.", "")


def _type_name(annotation: object) -> str:
    return _type_text(annotation).replace("|", "\\|")  # a bare | would end the table cell


def _section(cls: type) -> list[str]:
    tag = TAGS[cls]
    doc = inspect.getdoc(cls) or ""
    lines = [f"## `{tag}`", "", f"{doc}", "", "| field | type | default |", "|---|---|---|"]
    hints = msgspec.structs.fields(cls)  # type: ignore[arg-type]
    for field in hints:
        if field.default is not msgspec.NODEFAULT:
            default = f"`{field.default!r}`"
        elif field.default_factory is not msgspec.NODEFAULT:
            default = f"`{field.default_factory()!r}`"
        else:
            default = "required"
        lines.append(f"| `{field.name}` | `{_type_name(field.type)}` | {default} |")
    fixture = FIXTURES / f"{tag}.json"
    if fixture.exists():
        lines += ["", "```json", fixture.read_text().rstrip(), "```"]
    return [*lines, ""]


def render() -> str:
    """The whole catalogue as Markdown."""
    lines = [INTRO]
    groups: dict[str, list[type]] = {}
    for cls in EVENT_TYPES:
        groups.setdefault(TAGS[cls].split(".")[0], []).append(cls)
    lines.append("Families: " + ", ".join(f"`{g}.*`" for g in groups) + "\n")
    for classes in groups.values():
        for cls in classes:
            lines += _section(cls)
    return "\n".join(lines)


if __name__ == "__main__":
    OUT.write_text(render())
    print(f"wrote {OUT.relative_to(ROOT)}")
