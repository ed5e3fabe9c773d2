"""Sweep expansion: exact commands and configs for grid and seeded random sweeps."""

from __future__ import annotations

import math

import pytest

from whirr.sweeps import format_value, parse_spec, plan
from whirr.sweeps.expand import random_points, size
from whirr.sweeps.spec import Parameter

GRID = """\
name: lr
program: python train.py --epochs 3
parameters:
  lr: {values: [0.1, 0.00001]}
  batch_size: [32, 64]
  amp: {value: true}
"""


def test_grid_expands_every_combination_last_parameter_fastest() -> None:
    jobs = plan(parse_spec(GRID), "lr")
    assert [j.name for j in jobs] == ["lr-0", "lr-1", "lr-2", "lr-3"]
    assert [j.config for j in jobs] == [
        {"lr": 0.1, "batch_size": 32, "amp": True},
        {"lr": 0.1, "batch_size": 64, "amp": True},
        {"lr": 1e-05, "batch_size": 32, "amp": True},
        {"lr": 1e-05, "batch_size": 64, "amp": True},
    ]
    assert jobs[2].argv == [
        "python",
        "train.py",
        "--epochs",
        "3",
        "--lr",
        "1e-05",
        "--batch_size",
        "32",
        "--amp",
        "true",
    ]


def test_grid_is_capped_by_max_runs() -> None:
    spec = parse_spec(GRID + "max_runs: 3\n")
    assert len(plan(spec, "lr")) == 3


def test_program_is_split_like_a_shell_would() -> None:
    spec = parse_spec("program: python 'my script.py' --tag \"a b\"\nparameters: {x: [1]}\n")
    assert plan(spec, "s")[0].argv == ["python", "my script.py", "--tag", "a b", "--x", "1"]


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (True, "true"),
        (False, "false"),
        (3, "3"),
        (0.5, "0.5"),
        (1e-05, "1e-05"),
        (3.0e-7, "3e-07"),
        (1.0, "1.0"),
        (123456789.0, "123456789.0"),
        ("adam", "adam"),
        ([64, 128], "[64,128]"),
        (["a", "b c"], '["a","b c"]'),
        ({"k": 1}, '{"k":1}'),
        (None, "null"),
    ],
)
def test_values_are_written_so_programs_parse_them(value: object, text: str) -> None:
    assert format_value(value) == text
    if isinstance(value, float):
        assert float(text) == value  # exact round trip, however small


RANDOM = """\
program: python train.py
method: random
max_runs: 5
parameters:
  lr: {distribution: log_uniform, min: 1.0e-5, max: 1.0e-1}
  dropout: {distribution: uniform, min: 0.0, max: 0.5}
  layers: {distribution: int_uniform, min: 1, max: 4}
  opt: {values: [adam, sgd]}
"""


def test_random_sweep_is_reproducible_from_its_seed() -> None:
    spec = parse_spec(RANDOM)
    first, again, other = plan(spec, "r", seed=7), plan(spec, "r", seed=7), plan(spec, "r", 8)
    assert first == again
    assert [j.config for j in first] != [j.config for j in other]
    assert len(first) == 5


def test_random_sweep_exact_values_for_a_seed() -> None:
    # Pinned: changing how draws are made would silently change everyone's sweeps.
    jobs = plan(parse_spec(RANDOM), "r", seed=0)
    assert jobs[0].config == {"lr": 0.0238609, "dropout": 0.378977, "layers": 4, "opt": "adam"}
    assert jobs[0].argv == [
        "python",
        "train.py",
        "--lr",
        "0.0238609",
        "--dropout",
        "0.378977",
        "--layers",
        "4",
        "--opt",
        "adam",
    ]


def test_random_draws_stay_in_range_and_keep_six_significant_digits() -> None:
    params = [
        Parameter("lr", distribution="log_uniform", min=1e-6, max=1e-2),
        Parameter("p", distribution="uniform", min=-1.0, max=1.0),
        Parameter("n", distribution="int_uniform", min=3, max=5),
    ]
    points = random_points(params, 500, seed=1)
    for point in points:
        assert 1e-6 <= point["lr"] <= 1e-2
        assert -1.0 <= point["p"] <= 1.0
        assert point["n"] in (3, 4, 5) and isinstance(point["n"], int)
        assert float(f"{point['lr']:.6g}") == point["lr"]
    logs = sorted(math.log10(p["lr"]) for p in points)
    # Log-uniform: about as many draws per decade (median near 1e-4).
    assert -4.5 < logs[len(logs) // 2] < -3.5


@pytest.mark.parametrize(
    "text",
    [
        "program: x\nparameters: {a: [1, 2, 3], b: [1, 2], c: 5}\n",
        "program: x\nmax_runs: 4\nparameters: {a: [1, 2, 3], b: [1, 2]}\n",
        "program: x\nmax_runs: 9\nparameters: {a: [1, 2, 3], b: [1, 2]}\n",
        "program: x\nmethod: random\nmax_runs: 7\nparameters: {a: [1, 2]}\n",
    ],
)
def test_size_counts_the_jobs_without_expanding(text: str) -> None:
    spec = parse_spec(text)
    assert size(spec) == len(plan(spec, "s", seed=0))
