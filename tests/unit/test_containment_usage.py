"""``read_usage``: what a job's cgroup says it used, read from the same files a real
cgroup v2 has (a plain directory stands in for one: the memory controller, which these
machines bind to cgroup v1, is exercised here and in the Rust worker's unit test)."""

from __future__ import annotations

from pathlib import Path

from whirr.containment import read_usage
from whirr.events import JobUsage

CPU_STAT = "usage_usec 1500000\nuser_usec 1250000\nsystem_usec 250000\nnr_periods 0\n"


def test_cpu_time_and_memory_peak_are_read(tmp_path: Path) -> None:
    (tmp_path / "cpu.stat").write_text(CPU_STAT)
    assert read_usage(str(tmp_path)) == JobUsage(
        cpu_seconds=1.5, cpu_user_seconds=1.25, cpu_system_seconds=0.25
    )
    (tmp_path / "memory.peak").write_text("67108864\n")
    assert read_usage(str(tmp_path)) == JobUsage(
        cpu_seconds=1.5,
        cpu_user_seconds=1.25,
        cpu_system_seconds=0.25,
        memory_peak_bytes=64 * 2**20,
    )


def test_nothing_is_made_up_from_an_unreadable_cgroup(tmp_path: Path) -> None:
    assert read_usage(str(tmp_path)) is None  # no cpu.stat (the cgroup is gone)
    (tmp_path / "cpu.stat").write_text("nr_periods 0\n")
    assert read_usage(str(tmp_path)) is None
    (tmp_path / "cpu.stat").write_text("usage_usec 7\n")
    assert read_usage(str(tmp_path)) == JobUsage(cpu_seconds=7e-6)
