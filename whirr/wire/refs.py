"""How a person names a job or a run on the command line: ``1``, ``#1`` and ``job-1`` all
mean job 1 (and its run); anything else names a run by id or unique prefix."""

from __future__ import annotations

import re

_JOB_REF = re.compile(r"(?:#|job-)?([0-9]{1,18})")


def job_number(ref: str) -> int | None:
    """The job id ``ref`` names (``1``, ``#1``, ``job-1``), or None when it names none."""
    match = _JOB_REF.fullmatch(ref.strip())
    if match is None:
        return None
    number = int(match.group(1))
    return number if number > 0 else None


def parse_job_ref(ref: str) -> int:
    """The job id ``ref`` names; ValueError with a message a person can act on."""
    number = job_number(ref)
    if number is None:
        raise ValueError(f"{ref!r} is not a job: give its number, like 12, #12 or job-12")
    return number
