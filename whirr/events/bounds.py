"""Bounded scalars: the limits on every number that reaches a process, a timer or an
allocation, spelled once and shared by the events (what the log accepts), the HTTP bodies
(``whirr.wire``) and the CLI, sweep and config parsers.

They are ``Annotated`` types with ``msgspec.Meta`` constraints, so decoding or
``msgspec.convert`` enforces them and names the field that is out of range. A float with
bounds refuses NaN and infinity as well (neither compares within a range).
"""

from __future__ import annotations

from typing import Annotated

from msgspec import Meta

#: Largest value a signed 64-bit integer column (SQLite INTEGER, PostgreSQL BIGINT) holds.
INT64_MAX = 2**63 - 1
#: Most points one sweep may plan, and most replicates of an ablation condition: the
#: expansion is refused above them before anything is allocated.
MAX_SWEEP_POINTS = 100_000
MAX_REPLICATES = 10_000

Int32 = Annotated[int, Meta(ge=-(2**31), le=2**31 - 1)]
Int64 = Annotated[int, Meta(ge=-(2**63), le=INT64_MAX)]
#: Job ids are assigned by the log, densely from 1.
JobId = Annotated[int, Meta(ge=1, le=INT64_MAX)]
#: A position in the log (0: before the first event).
Position = Annotated[int, Meta(ge=0, le=INT64_MAX)]
Attempt = Annotated[int, Meta(ge=1, le=2**31 - 1)]
Pid = Annotated[int, Meta(ge=0, le=2**31 - 1)]
ExitCode = Int32
GpuId = Annotated[int, Meta(ge=0, le=4095)]
#: GPUs one job may ask for.
Gpus = Annotated[int, Meta(ge=0, le=64)]
Priority = Annotated[int, Meta(ge=-1_000_000, le=1_000_000)]
MaxAttempts = Annotated[int, Meta(ge=1, le=100)]
#: Failed attempts a job may retry.
Retries = Annotated[int, Meta(ge=0, le=100)]
#: Seconds before the first retry (it doubles with each further one): at most a day.
RetryDelay = Annotated[float, Meta(ge=0, le=86_400)]
#: Wall-clock limit of one attempt, in seconds (about 115 days at most).
TimeoutSeconds = Annotated[float, Meta(gt=0, le=10_000_000)]
#: A job's memory limit (``submit --memory``): 1 MiB to 1 PiB.
MemoryBytes = Annotated[int, Meta(ge=2**20, le=2**50)]
#: A job's CPU limit in CPUs (``submit --cpus``; fractions are fine).
Cpus = Annotated[float, Meta(ge=0.01, le=4096)]
#: SIGTERM -> SIGKILL delay when stopping a job's process group: at most an hour.
KillGraceSeconds = Annotated[float, Meta(ge=0, le=3_600)]
Slots = Annotated[int, Meta(ge=0, le=10_000)]
#: A file's size in bytes.
ByteSize = Annotated[int, Meta(ge=0, le=INT64_MAX)]
#: CPU time a job used, in seconds (a million CPUs busy for a year is below the bound).
CpuSeconds = Annotated[float, Meta(ge=0, le=1e14)]
#: A seed (a sweep's random seed, an ablation's base seed and its replicates' seeds).
Seed = Int64
#: How many points a sweep plans (or may run at most).
SweepPoints = Annotated[int, Meta(ge=0, le=MAX_SWEEP_POINTS)]
#: The index of a point within its sweep or of a replicate within its condition.
Index = Annotated[int, Meta(ge=0, le=INT64_MAX)]
Replicates = Annotated[int, Meta(ge=1, le=MAX_REPLICATES)]
