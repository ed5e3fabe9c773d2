"""Expanding a sweep into jobs: grid and random combinations, and values written as
command-line arguments a program parses. Pure (randomness comes from a seeded ``Random``)."""

from __future__ import annotations

import itertools
import math
import random
from typing import Any

import msgspec

from whirr.sweeps.spec import Parameter, SweepFileError, SweepSpec

#: Random draws keep this many significant digits, so commands stay readable and the
#: value a program receives is exactly the one recorded in the job's config.
SIGNIFICANT_DIGITS = 6
#: The most jobs one sweep plans (a grid's combinations after ``max_runs``, or a random
#: sweep's ``max_runs``). Checked from the sizes alone, before anything is expanded, so a
#: 10^12-point grid is an error rather than a machine out of memory.
MAX_JOBS = 100_000


class PlannedJob(msgspec.Struct, frozen=True):
    """One point of a sweep: what to run and under which name."""

    index: int
    name: str
    argv: list[str]
    config: dict[str, Any]


def format_value(value: Any) -> str:
    """A value as one command-line argument: booleans ``true``/``false``, floats in
    their shortest exact form (``1e-05``, ``0.5``), lists, mappings and null as JSON."""
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return repr(value)  # shortest string that reads back as the same float
    return msgspec.json.encode(value).decode()


def grid(parameters: list[Parameter], limit: int | None = None) -> list[dict[str, Any]]:
    """Every combination of the parameters' values (the first ``limit``), the last
    parameter varying fastest."""
    names = [p.name for p in parameters]
    columns = [p.values or [] for p in parameters]
    combos = itertools.islice(itertools.product(*columns), limit)
    return [dict(zip(names, combo, strict=True)) for combo in combos]


def _round(value: float, low: float, high: float) -> float:
    rounded = float(f"{value:.{SIGNIFICANT_DIGITS}g}")
    return min(max(rounded, low), high)


def draw(parameter: Parameter, rng: random.Random) -> Any:
    """One random value of ``parameter``."""
    if parameter.values is not None:
        return rng.choice(parameter.values)
    low, high = parameter.min, parameter.max
    assert low is not None and high is not None
    if parameter.distribution == "int_uniform":
        return rng.randint(int(low), int(high))
    if parameter.distribution == "log_uniform":
        return _round(math.exp(rng.uniform(math.log(low), math.log(high))), low, high)
    return _round(rng.uniform(low, high), low, high)


def random_points(parameters: list[Parameter], count: int, seed: int) -> list[dict[str, Any]]:
    """``count`` random combinations; the same seed gives the same points."""
    rng = random.Random(seed)
    return [{p.name: draw(p, rng) for p in parameters} for _ in range(count)]


def size(spec: SweepSpec) -> int:
    """How many jobs the sweep plans, without expanding it."""
    if spec.method in ("random", "bayes"):
        assert spec.max_runs is not None
        return spec.max_runs
    combos = math.prod(len(p.values or []) for p in spec.parameters)
    return combos if spec.max_runs is None else min(combos, spec.max_runs)


def check_size(spec: SweepSpec) -> int:
    """The number of jobs the sweep plans; ``SweepFileError`` over ``MAX_JOBS``."""
    planned = size(spec)
    if planned > MAX_JOBS:
        what = "the grid (after max_runs)" if spec.method == "grid" else "max_runs"
        raise SweepFileError(
            f"{what} plans {planned} jobs; one sweep plans at most {MAX_JOBS} "
            "(lower max_runs, or split the sweep)"
        )
    return planned


def points(spec: SweepSpec, seed: int | None = None) -> list[dict[str, Any]]:
    """The sweep's parameter combinations, in order (a grid capped by ``max_runs``);
    ``SweepFileError`` when there would be more than ``MAX_JOBS``."""
    check_size(spec)
    if spec.method == "random":
        assert spec.max_runs is not None
        return random_points(spec.parameters, spec.max_runs, seed if seed is not None else 0)
    return grid(spec.parameters, spec.max_runs)


def command(argv: list[str], config: dict[str, Any]) -> list[str]:
    """``argv`` followed by ``--key value`` for every parameter."""
    args = list(argv)
    for key, value in config.items():
        args += [f"--{key}", format_value(value)]
    return args


def plan(spec: SweepSpec, base: str, seed: int | None = None) -> list[PlannedJob]:
    """The jobs of a sweep named ``base``: ``<base>-<i>`` running program + arguments."""
    return [
        PlannedJob(index=i, name=f"{base}-{i}", argv=command(spec.argv, config), config=config)
        for i, config in enumerate(points(spec, seed))
    ]
