"""Sweeps: a YAML file of parameters expanded into jobs (grid or random), recorded as a
first-class sweep whose progress and best run can be reported."""

from whirr.sweeps.expand import PlannedJob, format_value, plan
from whirr.sweeps.progress import Member, Progress, SweepRecord
from whirr.sweeps.spec import SweepFileError, SweepSpec, parse_spec

__all__ = [
    "Member",
    "PlannedJob",
    "Progress",
    "SweepFileError",
    "SweepRecord",
    "SweepSpec",
    "format_value",
    "parse_spec",
    "plan",
]
