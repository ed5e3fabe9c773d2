"""What a job attempt used, as its worker read it from the job's cgroup at its end.

Shared by the job events (``JobFinished``, ``JobRetryScheduled``) and the HTTP bodies a
worker reports an end with, so the one shape travels from the worker to the log.
"""

from __future__ import annotations

import msgspec

from whirr.events.bounds import ByteSize, CpuSeconds


class JobUsage(msgspec.Struct, frozen=True, kw_only=True):
    """CPU time of every process the job ran (``cpu.stat``), and its memory peak
    (``memory.peak``) where the worker's cgroup has the memory controller."""

    #: User plus system CPU time, in seconds.
    cpu_seconds: CpuSeconds
    cpu_user_seconds: CpuSeconds | None = None
    cpu_system_seconds: CpuSeconds | None = None
    memory_peak_bytes: ByteSize | None = None
