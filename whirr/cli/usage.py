"""How ``whirr status N`` and ``whirr show`` put what a job used, and a run directory's
size warning: one line each."""

from __future__ import annotations

from whirr.clock import local_time
from whirr.wire.schemas import JobUsage, SizeWarning


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


def size_warning_line(warning: SizeWarning) -> str:
    """``run directory past 10.0 GiB: 10.3 GiB measured 2026-12-06 05:40`` (the worker's
    ``--warn-run-dir-size``)."""
    return (
        f"run directory past {_bytes(warning.limit)}: {_bytes(warning.size)} measured "
        f"{local_time(warning.at)} (worker's --warn-run-dir-size)"
    )
