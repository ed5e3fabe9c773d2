"""System metrics: CPU/memory from /proc, GPUs through a FAKE NVML module and a FAKE
nvidia-smi (this machine has no GPU), CUDA_VISIBLE_DEVICES respected."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest
from fakes import fake_nvml

from whirr.run import read_system_metrics
from whirr.tracking.gpus import NvmlGpus, SmiGpus, open_gpus, visible_devices
from whirr.tracking.system import SystemSampler, gpu_fields, memory_gb, process_tree_rss_gb

FAKE_SMI = Path(__file__).resolve().parents[1] / "fakes" / "bin" / "nvidia-smi"


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (None, None),
        ("", []),
        ("-1", []),
        ("1,0", ["1", "0"]),
        ("2, 3", ["2", "3"]),
        ("0,-1,1", ["0"]),  # CUDA stops at the first invalid entry
        ("GPU-fake-2,1", ["GPU-fake-2", "1"]),
    ],
)
def test_visible_devices(value: str | None, expected: list[str] | None) -> None:
    env = {} if value is None else {"CUDA_VISIBLE_DEVICES": value}
    assert visible_devices(env) == expected


def test_fake_nvml_reads_every_gpu_when_nothing_is_hidden() -> None:
    gpus = NvmlGpus(fake_nvml, None)
    readings = gpus.read()
    gpus.close()
    assert [r.name for r in readings] == [f"Fake GPU {i}" for i in range(4)]
    first = readings[0]
    assert first.util == 10.0 and first.mem_used_gb == 1.0 and first.mem_total_gb == 80.0
    assert first.temp_c == 40.0 and first.power_w == 100.0
    assert readings[3].power_w is None  # NotSupported becomes a missing value, not an error


def test_fake_nvml_respects_visible_devices_order_and_uuids() -> None:
    gpus = NvmlGpus(fake_nvml, ["2", "GPU-fake-0", "9", "1"])  # "9" does not exist: list ends
    names = [r.name for r in gpus.read()]
    gpus.close()
    assert names == ["Fake GPU 2", "Fake GPU 0"]


def test_gpu_fields_number_by_visible_ordinal_and_name_the_first() -> None:
    gpus = NvmlGpus(fake_nvml, ["3", "1"])
    fields = gpu_fields(gpus.read())
    gpus.close()
    assert fields["gpu_0_util"] == 40.0 and fields["gpu_0_name"] == "Fake GPU 3"
    assert fields["gpu_1_util"] == 20.0 and fields["gpu_1_mem_used_gb"] == 2.0
    assert fields["gpu_0_power_w"] is None and fields["gpu_1_power_w"] == 101.0
    assert fields["gpu_util"] == 40.0 and fields["gpu_name"] == "Fake GPU 3"
    assert fields["gpu_mem_total_gb"] == 80.0 and fields["gpu_mem_used_gb"] == 4.0
    assert "gpu_2_util" not in fields


def test_open_gpus_injected_nvml_and_hidden_devices(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "1")
    reader = open_gpus(nvml=fake_nvml)
    assert isinstance(reader, NvmlGpus)
    assert [r.name for r in reader.read()] == ["Fake GPU 1"]
    reader.close()
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "")
    assert open_gpus(nvml=fake_nvml) is None


def test_fake_nvidia_smi_fallback(monkeypatch: pytest.MonkeyPatch) -> None:
    reader = SmiGpus(str(FAKE_SMI), None)
    readings = reader.read()
    assert [r.name for r in readings] == ["Fake SMI GPU 0", "Fake SMI GPU 1"]
    assert readings[0].util == 55.0 and readings[0].mem_used_gb == 2.0
    assert readings[0].power_w == 250.5 and readings[1].power_w is None
    assert [r.name for r in SmiGpus(str(FAKE_SMI), ["1"]).read()] == ["Fake SMI GPU 1"]
    assert [r.name for r in SmiGpus(str(FAKE_SMI), ["GPU-smi-0"]).read()] == ["Fake SMI GPU 0"]
    # open_gpus finds nvidia-smi on PATH when pynvml is not installed here.
    monkeypatch.setenv("PATH", f"{FAKE_SMI.parent}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    found = open_gpus()
    assert isinstance(found, SmiGpus)


def test_no_gpu_means_no_reader(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))  # no nvidia-smi, and pynvml is not installed
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    assert open_gpus() is None


def test_proc_readings() -> None:
    used, total = memory_gb() or (0.0, 0.0)
    assert 0 < used < total
    rss = process_tree_rss_gb(os.getpid())
    assert rss is not None and rss > 0.001
    assert process_tree_rss_gb(2**22 + 12345) is None


def test_sampler_writes_system_jsonl_with_fake_gpus(tmp_path: Path) -> None:
    path = tmp_path / "system.jsonl"
    sampler = SystemSampler(path, interval=0.05, gpus=lambda: NvmlGpus(fake_nvml, ["0", "2"]))
    sampler.start()
    deadline = time.monotonic() + 20
    while len(read_system_metrics(path)) < 3 and time.monotonic() < deadline:
        time.sleep(0.05)
    sampler.stop()
    rows = read_system_metrics(tmp_path)
    assert len(rows) >= 3
    row = rows[-1]
    assert row["_timestamp"].endswith("Z")
    for key in (
        "cpu_percent",
        "memory_used_gb",
        "memory_total_gb",
        "process_rss_gb",
        "gpu_0_util",
        "gpu_1_util",
        "gpu_util",
        "gpu_mem_used_gb",
        "gpu_mem_total_gb",
        "gpu_name",
        "gpu_0_temp_c",
        "gpu_0_power_w",
    ):
        assert key in row, key
    assert row["gpu_name"] == "Fake GPU 0" and row["gpu_1_name"] == "Fake GPU 2"
    assert fake_nvml.calls[-1] == "shutdown"  # NVML released when sampling stops


def test_sampler_rejects_a_bad_interval(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="positive"):
        SystemSampler(tmp_path / "s.jsonl", interval=0)
