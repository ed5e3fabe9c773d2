"""How ``whirr status N`` and ``whirr show`` put what a job used: one line."""

from __future__ import annotations

from whirr.wire.schemas import JobUsage


def usage_line(usage: JobUsage) -> str:
    """``12.3 s CPU (11.9 user, 0.4 system), peak memory 1.2 GiB`` (the memory part only
    where the worker's cgroup accounted it)."""
    text = f"{usage.cpu_seconds:.1f} s CPU"
    split = (usage.cpu_user_seconds, usage.cpu_system_seconds)
    if split[0] is not None and split[1] is not None:
        text += f" ({split[0]:.1f} user, {split[1]:.1f} system)"
    if usage.memory_peak_bytes is not None:
        text += f", peak memory {_bytes(usage.memory_peak_bytes)}"
    return text


def _bytes(n: int) -> str:
    size = float(n)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if size < 1024:
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{size:.1f} TiB"
