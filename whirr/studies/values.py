"""Typing values written on a command line (``lr=1e-3``, ``-o priority=5``). Pure."""

from __future__ import annotations

import re
from typing import Any

import msgspec

_INT = re.compile(r"[+-]?\d+")
# Python's float grammar minus inf/nan, which no experiment setting means on purpose.
_FLOAT = re.compile(r"[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?")


def parse_scalar(text: str) -> Any:
    """``"3"`` -> 3, ``"1e-3"`` -> 0.001, ``"true"`` -> True, ``"[1,2]"`` -> [1, 2];
    quotes force a string (``"'3'"`` -> ``"3"``); anything else stays a string."""
    if len(text) >= 2 and text[0] == text[-1] and text[0] in "'\"":
        return text[1:-1]
    if _INT.fullmatch(text):
        return int(text)
    if _FLOAT.fullmatch(text):
        return float(text)
    lowered = text.lower()
    if lowered in ("true", "false"):
        return lowered == "true"
    if lowered in ("null", "none"):
        return None
    if text[:1] in "[{":
        try:
            return msgspec.json.decode(text)
        except msgspec.DecodeError:
            return text  # not JSON after all: keep what was typed
    return text


def split_assignment(text: str) -> tuple[str, str]:
    """``"key=value"`` -> (``key``, ``value``); raises ValueError without a key."""
    key, sep, value = text.partition("=")
    key = key.strip()
    if not sep or not key:
        raise ValueError(f"expected key=value, got {text!r}")
    return key, value
