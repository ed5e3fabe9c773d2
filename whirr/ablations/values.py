"""``key=value`` arguments of ``ablate baseline`` and ``ablate add``: typed values, and
``@path`` for a file's text (a prompt, a config snippet)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from whirr.services.errors import InvalidRequest
from whirr.studies.values import parse_scalar, split_assignment


def parse_assignments(texts: Sequence[str], base: Path) -> tuple[dict[str, Any], dict[str, str]]:
    """``["lr=1e-3", "prompt=@p.txt"]`` -> ({lr: 0.001, prompt: <text of p.txt>},
    {prompt: "p.txt"}). Relative paths start at ``base``."""
    values: dict[str, Any] = {}
    files: dict[str, str] = {}
    for text in texts:
        try:
            key, raw = split_assignment(text)
        except ValueError as exc:
            raise InvalidRequest(str(exc)) from None
        if key in values:
            raise InvalidRequest(f"{key!r} is given twice")
        if raw.startswith("@"):
            path = Path(raw[1:]).expanduser()
            full = path if path.is_absolute() else base / path
            try:
                values[key] = full.read_text(encoding="utf-8")
            except (OSError, UnicodeDecodeError) as exc:
                reason = getattr(exc, "strerror", None) or str(exc)
                raise InvalidRequest(f"{key}: cannot read {raw[1:]}: {reason}") from None
            files[key] = raw[1:]
        else:
            values[key] = parse_scalar(raw)
    return values, files
