"""Column types, inferred over *every* value rather than a sample.

DuckDB's own JSON type detection samples the first rows of each file and is the slow part of
``read_json``; a key that first appears late, or changes from int to float halfway, would
be missed or mis-typed. So whirr infers types itself (from Python values for config and
summary, from DuckDB's ``json_group_structure`` over all lines for metric files) and reads
with explicit ``columns``.

A type is one of the DuckDB names below, a ``dict`` (a struct: field -> type) or ``None``
(only nulls seen so far).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any, TypeAlias

Type: TypeAlias = str | dict[str, "Type"] | None

BIGINT, DOUBLE, BOOLEAN, VARCHAR, JSON = "BIGINT", "DOUBLE", "BOOLEAN", "VARCHAR", "JSON"
_INT_MIN, _INT_MAX = -(2**63), 2**63 - 1
#: Names json_group_structure gives integers (signed and unsigned, by magnitude).
INTEGER_NAMES = {
    "TINYINT",
    "SMALLINT",
    "INTEGER",
    "BIGINT",
    "HUGEINT",
    "UTINYINT",
    "USMALLINT",
    "UINTEGER",
    "UBIGINT",
    "UHUGEINT",
}
NUMERIC = frozenset({BIGINT, DOUBLE})


def type_of(value: Any) -> Type:
    """The type of one Python value decoded from JSON."""
    if value is None:
        return None
    if isinstance(value, bool):
        return BOOLEAN
    if isinstance(value, int):
        return BIGINT if _INT_MIN <= value <= _INT_MAX else DOUBLE
    if isinstance(value, float):
        return DOUBLE
    if isinstance(value, str):
        return VARCHAR
    if isinstance(value, dict):
        return {str(k): type_of(v) for k, v in value.items()}
    return JSON  # lists and anything else stay JSON text


def merge(a: Type, b: Type) -> Type:
    """The narrowest type holding values of both ``a`` and ``b``.

    Ints and floats widen to DOUBLE; structs merge field by field; a struct or JSON mixed
    with anything else is JSON; other mixed scalars (a number in one run, a string in
    another) become VARCHAR, which keeps each value's text.
    """
    if a is None:
        return b
    if b is None or a == b:
        return a
    if isinstance(a, dict) and isinstance(b, dict):
        out = dict(a)
        for key, t in b.items():
            out[key] = merge(out[key], t) if key in out else t
        return out
    if isinstance(a, dict) or isinstance(b, dict) or JSON in (a, b):
        return JSON
    if {a, b} == NUMERIC:
        return DOUBLE
    return VARCHAR


def infer(values: Iterable[Any]) -> Type:
    """The merged type of many values (e.g. every run's config)."""
    out: Type = None
    for value in values:
        out = merge(out, type_of(value))
    return out


def from_structure(node: Any) -> Type:
    """A type from DuckDB's ``json_group_structure`` output (decoded JSON)."""
    if isinstance(node, dict):
        return {str(k): from_structure(v) for k, v in node.items()}
    if isinstance(node, list):
        return JSON
    if node in INTEGER_NAMES:
        return BIGINT
    if node == "NULL":
        return None
    if node in (DOUBLE, "FLOAT", BOOLEAN, VARCHAR):
        return DOUBLE if node == "FLOAT" else node
    return JSON


def flat(t: Type) -> Type:
    """A top-level column type: structs are kept as JSON text (metric rows are flat)."""
    return JSON if isinstance(t, dict) else t


def sql_type(t: Type, unknown: str = VARCHAR) -> str:
    """The DuckDB type name for ``t``; ``unknown`` for all-null columns."""
    if t is None:
        return unknown
    if isinstance(t, dict):
        if not t:
            return JSON
        fields = ", ".join(f"{quote_ident(k)} {sql_type(v, unknown)}" for k, v in t.items())
        return f"STRUCT({fields})"
    return t


def quote_ident(name: str) -> str:
    """``name`` as a quoted SQL identifier (data-derived names are never trusted)."""
    return '"' + name.replace('"', '""') + '"'


def quote_str(text: str) -> str:
    """``text`` as a SQL string literal."""
    return "'" + text.replace("'", "''") + "'"


def leaves(t: Type, prefix: tuple[str, ...] = ()) -> list[tuple[tuple[str, ...], Type]]:
    """Every (path, type) of a struct's scalar fields, depth first, in key order."""
    if isinstance(t, dict) and t:
        out: list[tuple[tuple[str, ...], Type]] = []
        for key, sub in t.items():
            out.extend(leaves(sub, (*prefix, key)))
        return out
    return [(prefix, t)] if prefix else []


def merge_columns(columns: Iterable[Mapping[str, Type]]) -> dict[str, Type]:
    """The union of several column sets, in first-seen order, types merged."""
    out: dict[str, Type] = {}
    for cols in columns:
        for name, t in cols.items():
            out[name] = merge(out[name], t) if name in out else t
    return out
