"""FAKE CUDA device numbering for tests: which physical GPU a process gets as ``cuda:<n>``.

CUDA numbers devices fastest first unless ``CUDA_DEVICE_ORDER=PCI_BUS_ID``, and only
then applies ``CUDA_VISIBLE_DEVICES`` (indices into that numbering, or UUIDs), while NVML
and ``nvidia-smi`` number them by PCI bus. This reproduces that rule over the fake NVML's
pretend GPUs (``FAKE_NVML_BOX``), so a test can tell whether a job given NVML's GPU ``i``
really computes on it.
"""

from __future__ import annotations

import os

from fakes import fake_nvml


def cuda_devices(env: dict[str, str] | None = None) -> list[fake_nvml.FakeGpu]:
    """The pretend GPUs in the order this process's CUDA would number them."""
    env = dict(os.environ) if env is None else env
    gpus = sorted(fake_nvml.GPUS, key=lambda g: g.pci_bus_id)
    if env.get("CUDA_DEVICE_ORDER", "FASTEST_FIRST") != "PCI_BUS_ID":
        gpus = sorted(gpus, key=lambda g: -g.speed)  # stable: ties keep the bus order
    visible = env.get("CUDA_VISIBLE_DEVICES")
    if visible is None:
        return gpus
    picked: list[fake_nvml.FakeGpu] = []
    for token in (t.strip() for t in visible.split(",")):
        if token.isdigit() and int(token) < len(gpus):
            picked.append(gpus[int(token)])
        elif token.startswith("GPU-"):
            picked += [g for g in gpus if g.uuid == token]
        else:
            break  # CUDA stops at the first entry it cannot use
    return picked


if __name__ == "__main__":  # a job's view: the UUID of cuda:0, or "none"
    devices = cuda_devices()
    print(devices[0].uuid if devices else "none")
