"""GPU readings for ``system.jsonl``: NVML through ``pynvml`` (the ``nvidia-ml-py``
package, extra ``whirr[gpu]``), else ``nvidia-smi``, else nothing (no GPU, no error).

Only the GPUs the job may use are read: ``CUDA_VISIBLE_DEVICES`` (indices or ``GPU-``
UUIDs) picks and orders them, and ``gpu_<i>`` is the ordinal the job itself sees as
``cuda:<i>``.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
from collections.abc import Callable
from types import ModuleType
from typing import Any

import msgspec

_GIB = 1024**3
_SMI_TIMEOUT_S = 5.0
_SMI_FIELDS = "index,uuid,name,utilization.gpu,memory.used,memory.total,temperature.gpu,power.draw"


class GpuReading(msgspec.Struct, frozen=True):
    """One GPU at one moment."""

    name: str
    util: float | None
    mem_used_gb: float | None
    mem_total_gb: float | None
    temp_c: float | None = None
    power_w: float | None = None


def visible_devices(env: dict[str, str] | None = None) -> list[str] | None:
    """The device list ``CUDA_VISIBLE_DEVICES`` names (None: unset, all devices).

    Like CUDA, the list ends at the first entry that is not an index or a UUID, and
    ``-1`` or an empty value hide every device."""
    raw = (env if env is not None else os.environ).get("CUDA_VISIBLE_DEVICES")
    if raw is None:
        return None
    picked: list[str] = []
    for part in raw.split(","):
        token = part.strip()
        if token.isdigit() or token.startswith(("GPU-", "MIG-")):
            picked.append(token)
        else:
            break  # "-1", "" or anything CUDA would not accept ends the list
    return picked


class NvmlGpus:
    """GPU readings from an NVML module (``pynvml``, or a test's fake NVML)."""

    def __init__(self, nvml: ModuleType, devices: list[str] | None) -> None:
        self.nvml = nvml
        nvml.nvmlInit()
        if devices is None:
            devices = [str(i) for i in range(nvml.nvmlDeviceGetCount())]
        self._handles: list[Any] = []
        for token in devices:
            try:
                if token.isdigit():
                    self._handles.append(nvml.nvmlDeviceGetHandleByIndex(int(token)))
                else:
                    self._handles.append(nvml.nvmlDeviceGetHandleByUUID(token))
            except nvml.NVMLError:
                break  # an invalid entry ends the visible list, as in CUDA

    def read(self) -> list[GpuReading]:
        """A reading per visible GPU; a value NVML cannot give (unsupported) is None."""
        nvml = self.nvml
        out = []
        for handle in self._handles:
            name = self._get(nvml.nvmlDeviceGetName, handle)
            util = self._get(nvml.nvmlDeviceGetUtilizationRates, handle)
            mem = self._get(nvml.nvmlDeviceGetMemoryInfo, handle)
            temp = self._get(nvml.nvmlDeviceGetTemperature, handle, nvml.NVML_TEMPERATURE_GPU)
            power_mw = self._get(nvml.nvmlDeviceGetPowerUsage, handle)
            out.append(
                GpuReading(
                    name=name.decode() if isinstance(name, bytes) else str(name or "GPU"),
                    util=float(util.gpu) if util is not None else None,
                    mem_used_gb=mem.used / _GIB if mem is not None else None,
                    mem_total_gb=mem.total / _GIB if mem is not None else None,
                    temp_c=float(temp) if temp is not None else None,
                    power_w=power_mw / 1000.0 if power_mw is not None else None,
                )
            )
        return out

    def _get(self, fn: Callable[..., Any], *args: Any) -> Any:
        try:
            return fn(*args)
        except self.nvml.NVMLError:
            return None

    def close(self) -> None:
        """Release NVML."""
        with contextlib.suppress(self.nvml.NVMLError):
            self.nvml.nvmlShutdown()


class SmiGpus:
    """GPU readings parsed from ``nvidia-smi --query-gpu`` (when NVML is not installed)."""

    def __init__(self, executable: str, devices: list[str] | None) -> None:
        self.executable = executable
        self.devices = devices

    def read(self) -> list[GpuReading]:
        """A reading per visible GPU, or none when ``nvidia-smi`` fails."""
        try:
            proc = subprocess.run(
                [self.executable, f"--query-gpu={_SMI_FIELDS}", "--format=csv,noheader,nounits"],
                capture_output=True,
                timeout=_SMI_TIMEOUT_S,
                check=False,
                stdin=subprocess.DEVNULL,
            )
        except (OSError, subprocess.TimeoutExpired):
            return []
        if proc.returncode != 0:
            return []
        rows: dict[str, list[str]] = {}
        ordered: list[list[str]] = []
        for line in proc.stdout.decode(errors="replace").splitlines():
            cells = [c.strip() for c in line.split(",")]
            if len(cells) != 8:
                continue
            rows[cells[0]] = rows[cells[1]] = cells
            ordered.append(cells)
        picked = ordered if self.devices is None else []
        for token in self.devices or []:
            if token not in rows:
                break
            picked.append(rows[token])
        return [
            GpuReading(
                name=c[2],
                util=_num(c[3]),
                mem_used_gb=_mib_to_gb(c[4]),
                mem_total_gb=_mib_to_gb(c[5]),
                temp_c=_num(c[6]),
                power_w=_num(c[7]),
            )
            for c in picked
        ]

    def close(self) -> None:
        """Nothing to release."""


def _num(cell: str) -> float | None:
    try:
        return float(cell)
    except ValueError:
        return None  # "[N/A]", "[Not Supported]"


def _mib_to_gb(cell: str) -> float | None:
    value = _num(cell)
    return None if value is None else value / 1024.0


def open_gpus(nvml: ModuleType | None = None) -> NvmlGpus | SmiGpus | None:
    """The best available GPU reader for the devices this process may use, or None.

    ``nvml`` injects an NVML module (tests pass a fake one); otherwise ``pynvml`` is tried,
    then ``nvidia-smi`` on PATH."""
    devices = visible_devices()
    if devices == []:
        return None  # CUDA_VISIBLE_DEVICES hides every GPU
    if nvml is None:
        try:
            import pynvml as nvml  # type: ignore[no-redef]
        except ImportError:
            nvml = None
    if nvml is not None:
        try:
            gpus = NvmlGpus(nvml, devices)
        except Exception:  # NVMLError_LibraryNotFound, driver not loaded, ...
            pass
        else:
            if gpus._handles:
                return gpus
            gpus.close()
            return None
    smi = shutil.which("nvidia-smi")
    if smi is not None:
        reader = SmiGpus(smi, devices)
        if reader.read():
            return reader
    return None
