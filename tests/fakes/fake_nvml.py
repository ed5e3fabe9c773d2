"""FAKE NVML for tests: a stand-in for ``pynvml`` (nvidia-ml-py) on machines without a GPU.

It answers the handful of NVML calls whirr's GPU reader makes, for a configurable set of
pretend GPUs. It is a test double, never used by whirr itself; tests inject it (by
argument, or as ``sys.modules["pynvml"]`` in a child process).
"""

from __future__ import annotations

import os
from types import SimpleNamespace
from typing import Any

NVML_TEMPERATURE_GPU = 0
_MIB = 1024**2


class NVMLError(Exception):
    """Base of the fake's errors, as in pynvml."""


class NVMLError_NotSupported(NVMLError):
    """A query the pretend device does not support."""


class FakeGpu(SimpleNamespace):
    """One pretend GPU."""


#: The pretend machine: four GPUs with distinct, recognisable readings. GPU 3 has no
#: power sensor (NVML answers NotSupported, as real consumer cards sometimes do).
GPUS = [
    FakeGpu(
        index=i,
        uuid=f"GPU-fake-{i}",
        name=f"Fake GPU {i}",
        pci_bus_id=f"00000000:{i + 1:02x}:00.0",
        speed=1,
        util=10 * (i + 1),
        mem_used=(i + 1) * 1024 * _MIB,
        mem_total=80 * 1024 * _MIB,
        temp=40 + i,
        power_mw=None if i == 3 else 100_000 + i * 1000,
    )
    for i in range(4)
]
#: ``FAKE_NVML_BOX=mixed``: a box of two models, the slower one first on the PCI bus
#: (NVML and ``nvidia-smi`` number GPUs by bus; CUDA, by default, fastest first).
MIXED = [
    FakeGpu(
        index=0,
        uuid="GPU-fake-t4",
        name="Tesla T4",
        pci_bus_id="00000000:01:00.0",
        speed=1,  # how CUDA's FASTEST_FIRST ranks it (higher: faster)
        util=5,
        mem_used=1024 * _MIB,
        mem_total=16 * 1024 * _MIB,
        temp=40,
        power_mw=70_000,
    ),
    FakeGpu(
        index=1,
        uuid="GPU-fake-a100",
        name="NVIDIA A100-SXM4-80GB",
        pci_bus_id="00000000:41:00.0",
        speed=10,
        util=50,
        mem_used=40 * 1024 * _MIB,
        mem_total=80 * 1024 * _MIB,
        temp=60,
        power_mw=300_000,
    ),
]
if os.environ.get("FAKE_NVML_BOX") == "mixed":
    GPUS = MIXED
calls: list[str] = []
initialised = False


def nvmlInit() -> None:
    global initialised
    calls.append("init")
    initialised = True


def nvmlShutdown() -> None:
    global initialised
    calls.append("shutdown")
    initialised = False


def _check() -> None:
    if not initialised:
        raise NVMLError("NVML not initialised")


def nvmlDeviceGetCount() -> int:
    _check()
    return len(GPUS)


def nvmlDeviceGetHandleByIndex(index: int) -> FakeGpu:
    _check()
    if not 0 <= index < len(GPUS):
        raise NVMLError(f"invalid index {index}")
    return GPUS[index]


def nvmlDeviceGetHandleByUUID(uuid: str) -> FakeGpu:
    _check()
    for gpu in GPUS:
        if gpu.uuid == uuid:
            return gpu
    raise NVMLError(f"no GPU {uuid}")


def nvmlDeviceGetName(handle: FakeGpu) -> bytes:
    return handle.name.encode()  # older pynvml versions return bytes


def nvmlDeviceGetUtilizationRates(handle: FakeGpu) -> Any:
    return SimpleNamespace(gpu=handle.util, memory=handle.util // 2)


def nvmlDeviceGetMemoryInfo(handle: FakeGpu) -> Any:
    return SimpleNamespace(
        used=handle.mem_used, total=handle.mem_total, free=handle.mem_total - handle.mem_used
    )


def nvmlDeviceGetTemperature(handle: FakeGpu, sensor: int) -> int:
    assert sensor == NVML_TEMPERATURE_GPU
    return int(handle.temp)


def nvmlDeviceGetPowerUsage(handle: FakeGpu) -> int:
    if handle.power_mw is None:
        raise NVMLError_NotSupported("power readings not supported")
    return int(handle.power_mw)
