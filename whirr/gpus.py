"""Which GPUs this machine has, for ``whirr worker --gpus all`` and ``whirr doctor``.

Detection asks NVML (``pynvml``, extra ``whirr[gpu]``), then ``nvidia-smi``, and finds no
GPU when neither answers. ``WHIRR_FAKE_GPUS=N`` is a **testing hook**: it makes detection
report N pretend GPUs (ids 0..N-1) without asking the hardware, so the scheduling tests
and benchmarks run on machines without a GPU. Jobs still only see ``CUDA_VISIBLE_DEVICES``.
"""

from __future__ import annotations

import os
import shutil
import subprocess

#: The testing hook: a number of pretend GPUs (see the module doc).
FAKE_GPUS_ENV = "WHIRR_FAKE_GPUS"
_SMI_TIMEOUT_S = 5.0


class GpuSpecError(ValueError):
    """A ``--gpus`` value that names no GPU list."""


def detect_gpus() -> list[int]:
    """Indices of this machine's GPUs (empty when there are none or none can be read)."""
    fake = os.environ.get(FAKE_GPUS_ENV)
    if fake is not None and fake.strip():
        try:
            return list(range(max(0, int(fake))))
        except ValueError:
            raise GpuSpecError(f"{FAKE_GPUS_ENV} must be a number, not {fake!r}") from None
    found = _nvml_count()
    if found is None:
        found = _smi_count()
    return list(range(found or 0))


def parse_gpus(spec: str) -> list[int]:
    """``"0,1,3"`` -> ``[0, 1, 3]``; ``"all"`` -> every detected GPU; ``""``/``"none"`` -> []."""
    text = spec.strip().lower()
    if text in ("", "none"):
        return []
    if text == "all":
        return detect_gpus()
    ids: list[int] = []
    for part in text.split(","):
        token = part.strip()
        if not token.isdigit():
            raise GpuSpecError(f"--gpus takes GPU indices like 0,1,2 or `all`, not {spec!r}")
        if int(token) in ids:
            raise GpuSpecError(f"GPU {token} is listed twice in {spec!r}")
        ids.append(int(token))
    return ids


def _nvml_count() -> int | None:
    try:
        import pynvml  # type: ignore[import-not-found, unused-ignore]
    except ImportError:
        return None
    try:
        pynvml.nvmlInit()
        try:
            return int(pynvml.nvmlDeviceGetCount())
        finally:
            pynvml.nvmlShutdown()
    except Exception:  # NVML raises its own error types; any of them means "cannot tell"
        return None


def _smi_count() -> int | None:
    smi = shutil.which("nvidia-smi")
    if smi is None:
        return None
    try:
        out = subprocess.run(
            [smi, "--query-gpu=index", "--format=csv,noheader"],
            capture_output=True,
            text=True,
            timeout=_SMI_TIMEOUT_S,
            check=True,
        ).stdout
    except (OSError, subprocess.SubprocessError):
        return None
    return sum(1 for line in out.splitlines() if line.split(",")[0].strip().isdigit())
