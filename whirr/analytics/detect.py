"""Each JSONL segment's columns and types, over every line (see :mod:`.schema` for why not a
sample).

DuckDB's ``json_group_structure`` gives the answer directly, but building a structure per
line is most of its cost (2.5-2.9 s of CPU for the benchmark's million lines, against 0.3 s
to parse them). So whirr first guesses each file's keys from its first line, which is
almost always all of them (a logger writes the same keys every step), and checks the guess
against every line with one cheap pass: per line, the JSON type of each guessed key and
the number of keys. A file passes when every line is an object whose keys are all among its
first line's; its types are then merged from those per-line types by the same rules as
``json_group_structure``. Files that fail (a key first logged later, a line that is not an
object) get ``json_group_structure``, so the answer is the same either way.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import msgspec

from whirr.analytics.schema import (
    BIGINT,
    BOOLEAN,
    DOUBLE,
    INTEGER_NAMES,
    JSON,
    VARCHAR,
    Type,
    flat,
    from_structure,
    quote_str,
)
from whirr.analytics.segment import Segment, json_options

_decode = msgspec.json.Decoder().decode
#: The longest first line read for the guess; a longer one goes to the exact pass.
_FIRST_LINE_MAX = 1 << 20


def detect_columns(con: Any, segments: Sequence[Segment]) -> dict[Path, dict[str, Type]]:
    """Each file's columns and types, merged over every line (not a sample).

    ``_idx`` and ``step`` are integers and ``_timestamp`` stays text, whatever a damaged line
    says: they are whirr's own keys, and keeping ``_timestamp`` as written keeps exports
    exact.
    """
    if not segments:
        return {}
    guesses = {str(seg.path): _first_keys(seg.path) for seg in segments}
    found = _checked(con, {f: keys for f, keys in guesses.items() if keys})
    rest = [f for f in guesses if f not in found]
    found.update(_structures(con, rest))
    return {Path(f): _fixed(found[f]) for f in guesses if f in found}


def _first_keys(path: Path) -> list[str]:
    """The keys of the file's first line, in order ([] when it is not a whole object)."""
    try:
        with open(path, "rb") as fh:
            line = fh.readline(_FIRST_LINE_MAX)
        row = _decode(line)
    except (OSError, msgspec.DecodeError):
        return []
    return list(row) if isinstance(row, dict) and line.endswith(b"\n") else []


def _checked(con: Any, guesses: dict[str, list[str]]) -> dict[str, dict[str, Type]]:
    """The columns of the files whose every line passes the check against its guess."""
    if not guesses:
        return {}
    keys = list(dict.fromkeys(k for ks in guesses.values() for k in ks))
    # JSON Pointer paths ('/key', with ~ and / escaped) take any key text literally.
    pointers = (
        "["
        + ", ".join(quote_str("/" + k.replace("~", "~0").replace("/", "~1")) for k in keys)
        + "]"
    )
    rows = con.execute(
        f"SELECT filename, json_type(json) = 'OBJECT', json_type(json, {pointers}), "
        f"len(json_keys(json)) FROM read_json_objects(?, {json_options()}, filename=true) "
        "GROUP BY ALL",
        [list(guesses)],
    ).fetchall()
    merged: dict[str, dict[str, Type]] = {}
    failed: set[str] = set()
    for filename, is_object, types, count in rows:
        if is_object is None:
            continue  # a line that is not JSON (a torn last line): skipped, as when read
        own = guesses[filename]
        present = {k: t for k, t in zip(keys, types, strict=True) if t is not None}
        if not is_object or len(present) != count or not present.keys() <= set(own):
            failed.add(filename)
            continue
        # The first line has every guessed key, so each is a column, in that line's order.
        cols = merged.setdefault(filename, dict.fromkeys(own))
        for key, name in present.items():
            cols[key] = _merge(cols[key], _kind(name))
    return {f: cols for f, cols in merged.items() if f not in failed}


def _kind(name: str) -> Type:
    """One line's JSON type name, as the merge below sees it."""
    if name in INTEGER_NAMES:
        return BIGINT
    if name == "NULL":
        return None
    return name if name in (DOUBLE, VARCHAR, BOOLEAN) else JSON


def _merge(a: Type, b: Type) -> Type:
    """``json_group_structure``'s rule for two values of one key: nulls give way, ints
    and floats make DOUBLE, any other mix (or an object or array) is JSON."""
    if a is None or a == b:
        return b if a is None else a
    if b is None:
        return a
    return DOUBLE if {a, b} <= {BIGINT, DOUBLE} else JSON


def _structures(con: Any, files: list[str]) -> dict[str, dict[str, Type]]:
    """The exact pass: DuckDB's ``json_group_structure`` over every line of ``files``."""
    if not files:
        return {}
    rows = con.execute(
        "SELECT filename, json_group_structure(json) FROM read_json_objects("
        f"?, {json_options()}, filename=true) GROUP BY filename",
        [files],
    ).fetchall()
    out: dict[str, dict[str, Type]] = {}
    for filename, structure in rows:
        node = _decode(structure) if structure else {}
        out[filename] = (
            {str(k): flat(from_structure(v)) for k, v in node.items()}
            if isinstance(node, dict)
            else {}
        )
    return out


def _fixed(cols: dict[str, Type]) -> dict[str, Type]:
    """whirr's own keys keep their types whatever a damaged line says."""
    cols = dict(cols)
    if "_idx" in cols:
        cols["_idx"] = BIGINT
    if "_timestamp" in cols:
        cols["_timestamp"] = VARCHAR
    if cols.get("step") not in (None, BIGINT):
        cols["step"] = VARCHAR if cols["step"] != DOUBLE else DOUBLE
    return cols
