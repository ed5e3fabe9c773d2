"""System metrics: a daemon thread appending one line to ``system.jsonl`` every interval
(10 s by default): CPU %, memory, the RSS of this process and its descendants, and the
GPUs the job may use (see ``whirr.tracking.gpus``).

CPU and memory come from ``/proc`` (Linux); where it is missing those keys are left out.
Nothing here may ever disturb the training loop: a failed sample is skipped silently.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from datetime import datetime
from typing import Any

import msgspec

from whirr.clock import UTC
from whirr.filemodes import open_private
from whirr.tracking.gpus import GpuReading, NvmlGpus, SmiGpus, open_gpus

DEFAULT_INTERVAL_S = 10.0
_GIB = 1024**3
_PAGE = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096


def gpu_fields(readings: list[GpuReading]) -> dict[str, Any]:
    """The ``gpu_*`` keys of a sample: per GPU ``gpu_<i>_*``, and the first one unnumbered."""
    out: dict[str, Any] = {}
    for i, gpu in enumerate(readings):
        out[f"gpu_{i}_util"] = gpu.util
        out[f"gpu_{i}_mem_used_gb"] = _round(gpu.mem_used_gb)
        out[f"gpu_{i}_mem_total_gb"] = _round(gpu.mem_total_gb)
        out[f"gpu_{i}_temp_c"] = gpu.temp_c
        out[f"gpu_{i}_power_w"] = gpu.power_w
        out[f"gpu_{i}_name"] = gpu.name
    if readings:
        first = readings[0]
        out["gpu_util"] = first.util
        out["gpu_mem_used_gb"] = _round(first.mem_used_gb)
        out["gpu_mem_total_gb"] = _round(first.mem_total_gb)
        out["gpu_name"] = first.name
    return out


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 3)


class CpuMeter:
    """System-wide CPU % between two calls, from ``/proc/stat``."""

    def __init__(self) -> None:
        self._last = self._times()

    @staticmethod
    def _times() -> tuple[int, int] | None:
        try:
            with open("/proc/stat", "rb") as fh:
                fields = [int(x) for x in fh.readline().split()[1:]]
        except (OSError, ValueError):
            return None
        idle = fields[3] + (fields[4] if len(fields) > 4 else 0)  # idle + iowait
        return sum(fields), idle

    def percent(self) -> float | None:
        """Busy share of all CPUs since the previous call (or since creation)."""
        now = self._times()
        last, self._last = self._last, now
        if now is None or last is None or now[0] <= last[0]:
            return None
        total, idle = now[0] - last[0], now[1] - last[1]
        return round(100.0 * (total - idle) / total, 1)


def memory_gb() -> tuple[float, float] | None:
    """``(used, total)`` system memory in GiB; used = total - available."""
    values: dict[bytes, int] = {}
    try:
        with open("/proc/meminfo", "rb") as fh:
            for line in fh:
                key, _, rest = line.partition(b":")
                if key in (b"MemTotal", b"MemAvailable"):
                    values[key] = int(rest.split()[0]) * 1024
    except (OSError, ValueError):
        return None
    if len(values) < 2:
        return None
    total = values[b"MemTotal"]
    return (total - values[b"MemAvailable"]) / _GIB, total / _GIB


def process_tree_rss_gb(root: int) -> float | None:
    """Resident memory of ``root`` and all its descendants, in GiB."""
    parents: dict[int, int] = {}
    rss: dict[int, int] = {}
    try:
        names = os.listdir("/proc")
    except OSError:
        return None
    for name in names:
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/stat", "rb") as fh:
                stat = fh.read()
        except OSError:
            continue  # the process ended meanwhile
        fields = stat[stat.rindex(b")") + 2 :].split()
        pid = int(name)
        parents[pid] = int(fields[1])
        rss[pid] = int(fields[21]) * _PAGE
    if root not in rss:
        return None
    children: dict[int, list[int]] = {}
    for pid, ppid in parents.items():
        children.setdefault(ppid, []).append(pid)
    total, stack = 0, [root]
    while stack:
        pid = stack.pop()
        total += rss.get(pid, 0)
        stack.extend(children.get(pid, ()))
    return total / _GIB


class SystemSampler:
    """Samples the system every ``interval`` seconds into ``path`` on a daemon thread."""

    def __init__(
        self,
        path: str | os.PathLike[str],
        interval: float = DEFAULT_INTERVAL_S,
        gpus: Callable[[], NvmlGpus | SmiGpus | None] = open_gpus,
        root_pid: int | None = None,
    ) -> None:
        if interval <= 0:
            raise ValueError("system_metrics_interval must be positive")
        self.path = os.fspath(path)
        self.interval = interval
        self._open_gpus = gpus
        self._root = root_pid if root_pid is not None else os.getpid()
        self._stop = threading.Event()
        self._encode = msgspec.json.Encoder().encode
        self._thread = threading.Thread(target=self._loop, name="whirr-system-metrics", daemon=True)

    def start(self) -> None:
        """Begin sampling (the first sample is taken at once)."""
        self._thread.start()

    def stop(self, timeout: float = 2.0) -> None:
        """Stop sampling and wait briefly for the thread to end."""
        self._stop.set()
        if self._thread.is_alive() and threading.current_thread() is not self._thread:
            self._thread.join(timeout)

    def _loop(self) -> None:
        try:
            gpus = self._open_gpus()
        except Exception:
            gpus = None
        cpu = CpuMeter()
        try:
            fd = open_private(self.path, os.O_WRONLY | os.O_APPEND)  # 0600 when new
        except OSError:
            return
        try:
            # A short first wait so the first CPU % covers a real interval.
            if not self._stop.wait(min(1.0, self.interval)):
                while True:
                    self._sample(fd, cpu, gpus)
                    if self._stop.wait(self.interval):
                        break
        finally:
            os.close(fd)
            if gpus is not None:
                gpus.close()

    def _sample(self, fd: int, cpu: CpuMeter, gpus: NvmlGpus | SmiGpus | None) -> None:
        try:
            row: dict[str, Any] = {"_timestamp": datetime.now(UTC)}
            percent = cpu.percent()
            if percent is not None:
                row["cpu_percent"] = percent
            mem = memory_gb()
            if mem is not None:
                row["memory_used_gb"], row["memory_total_gb"] = round(mem[0], 3), round(mem[1], 3)
            rss = process_tree_rss_gb(self._root)
            if rss is not None:
                row["process_rss_gb"] = round(rss, 4)
            if gpus is not None:
                row.update(gpu_fields(gpus.read()))
            os.write(fd, self._encode(row) + b"\n")
        except Exception:
            return  # a sample lost is better than a training loop disturbed
