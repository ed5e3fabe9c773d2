"""Small conversions every reader shares: text parameters to numbers, JSON-safe values,
epoch times, run ids."""

from __future__ import annotations

import hashlib
import math
import re
from typing import Any

_NUMBER = re.compile(r"[+-]?(\d+\.?\d*([eE][+-]?\d+)?|\.\d+([eE][+-]?\d+)?)")
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


def param_value(text: str) -> Any:
    """An MLflow-style text parameter as the number it spells (``"0.1"`` -> 0.1,
    ``"3"`` -> 3), ``true``/``false`` as booleans, anything else as the text, so that
    ``whirr compare`` and ``sql`` see numbers where the script logged numbers."""
    if _NUMBER.fullmatch(text):
        number = float(text)
        if number.is_integer() and not any(c in text for c in ".eE"):
            return int(text)
        return number if math.isfinite(number) else text
    if text in ("True", "true"):
        return True
    if text in ("False", "false"):
        return False
    return text


def finite(value: Any) -> Any:
    """``value`` with NaN and infinities (which JSON and the event log cannot hold) as
    None, through nested dicts and lists."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {str(k): finite(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [finite(v) for v in value]
    return value


def run_id_for(source: str, key: str) -> str:
    """A whirr run id for a source run: ``<source>-<its id>`` when the id is short and
    safe in a path, else ``<source>-<hash of the id>``; the same key always gives the
    same id, which is what makes an import idempotent."""
    if len(key) <= 64 and not _UNSAFE.search(key) and not key.startswith("."):
        return f"{source}-{key}"
    return f"{source}-{hashlib.sha256(key.encode()).hexdigest()[:16]}"
