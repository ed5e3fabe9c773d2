"""Sweep files with method: bayes, early_terminate, max_concurrent and categorical
distributions: what they become, and the errors that name the key and the line; the
pruners they build (Optuna, real studies)."""

from __future__ import annotations

import pytest

from whirr.sweeps import SweepFileError, parse_spec
from whirr.sweeps.optuna_study import Trial, distributions, pruned

BAYES = """\
program: python train.py
method: bayes
max_runs: 12
metric: {name: val_loss, goal: minimize}
parameters:
  lr: {distribution: log_uniform, min: 1.0e-4, max: 1.0e-1}
  opt: {distribution: categorical, values: [adam, sgd]}
  layers: [[64], [64, 64]]
"""


def error_of(text: str) -> str:
    with pytest.raises(SweepFileError) as caught:
        parse_spec(text, source="sweep.yaml")
    return str(caught.value)


def test_a_bayes_file_reads_with_its_defaults() -> None:
    spec = parse_spec(BAYES)
    assert spec.method == "bayes"
    assert spec.max_runs == 12
    assert spec.max_concurrent == 2  # the default
    assert spec.early_terminate is None
    assert [p.name for p in spec.parameters] == ["lr", "opt", "layers"]
    assert spec.parameters[1].values == ["adam", "sgd"]  # categorical: its values
    # Lists of values are searched by index, so lists can be choices too.
    found = distributions(spec.parameters)
    assert set(found) == {"lr", "opt", "layers"}
    assert found["lr"].log is True


def test_early_terminate_and_max_concurrent() -> None:
    text = BAYES + "max_concurrent: 4\nearly_terminate: {type: hyperband, min_iter: 2, eta: 2}\n"
    spec = parse_spec(text)
    assert spec.max_concurrent == 4
    assert spec.early_terminate == {"type": "hyperband", "min_iter": 2, "eta": 2}
    grid = "program: p\nmetric: loss\nearly_terminate: {type: median}\nparameters: {x: [1, 2]}\n"
    assert parse_spec(grid).early_terminate == {"type": "median"}  # any method can prune


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            BAYES.replace("metric: {name: val_loss, goal: minimize}\n", ""),
            "sweep.yaml, line 2: method: bayes sweeps need `metric` (what they optimise)",
        ),
        (
            BAYES.replace("max_runs: 12\n", ""),
            "sweep.yaml, line 2: method: bayes sweeps need `max_runs`",
        ),
        (
            BAYES + "early_terminate: {type: asha}\n",
            "sweep.yaml, line 9: early_terminate.type: unknown type 'asha' "
            "(expected one of: median, hyperband)",
        ),
        (
            BAYES + "early_terminate: {type: median, eta: 3}\n",
            "sweep.yaml, line 9: early_terminate.eta: unknown key for median",
        ),
        (
            BAYES + "early_terminate: {type: hyperband, min_iter: 0}\n",
            "sweep.yaml, line 9: early_terminate.min_iter: must be an integer >= 1, not 0",
        ),
        (
            BAYES + "early_terminate: {min_iter: 3}\n",
            "sweep.yaml, line 9: early_terminate: needs `type` (median or hyperband)",
        ),
        (
            "program: p\nearly_terminate: {type: median}\nparameters: {x: [1, 2]}\n",
            "sweep.yaml, line 2: early_terminate: needs `metric` (what it reads)",
        ),
        (
            "program: p\nmax_concurrent: 2\nparameters: {x: [1, 2]}\n",
            "sweep.yaml, line 2: max_concurrent: only a bayes sweep proposes jobs as others end",
        ),
        (
            BAYES + "max_concurrent: 0\n",
            "sweep.yaml, line 9: max_concurrent: must be an integer >= 1, not 0",
        ),
        (
            BAYES.replace("values: [adam, sgd]", "min: 1, max: 2"),
            "sweep.yaml, line 7: parameters.opt: a categorical distribution takes `values`",
        ),
    ],
)
def test_bad_bayes_files_say_which_key_and_which_line(text: str, message: str) -> None:
    assert error_of(text).startswith(message)


def test_the_median_pruner_stops_a_run_that_lags_and_spares_one_that_leads() -> None:
    spec = parse_spec(BAYES + "early_terminate: {type: median, min_iter: 1, min_trials: 2}\n")
    assert spec.early_terminate is not None
    curve = {step: 1.0 / (step + 1) for step in range(6)}
    done = [
        Trial(i, {"lr": 0.01, "opt": "adam", "layers": [64]}, "complete", 0.2, curve)
        for i in range(3)
    ]
    config = {"lr": 0.02, "opt": "sgd", "layers": [64, 64]}

    def verdict(factor: float, steps: int) -> bool:
        mine = {step: curve[step] * factor for step in range(steps)}
        return pruned(
            spec.parameters,
            done,
            Trial(3, config, "running", None, mine),
            goal="minimize",
            early_terminate=spec.early_terminate,  # type: ignore[arg-type]
        )

    assert verdict(3.0, 3)  # three times worse than the others at steps 1 and 2
    assert not verdict(0.5, 3)  # better than all
    assert not verdict(3.0, 1)  # min_iter: step 0 is never judged
    # With fewer finished runs than min_trials, nobody is pruned.
    assert not pruned(
        spec.parameters,
        done[:1],
        Trial(3, config, "running", None, {0: 9.0, 1: 9.0, 2: 9.0}),
        goal="minimize",
        early_terminate=spec.early_terminate,
    )


def test_hyperband_prunes_a_run_far_behind_at_a_rung() -> None:
    spec = parse_spec(BAYES + "early_terminate: {type: hyperband, min_iter: 1, max_iter: 9}\n")
    assert spec.early_terminate is not None
    runs = [
        Trial(
            i,
            {"lr": 0.01, "opt": "adam", "layers": [64]},
            "complete",
            0.1 * (i + 1),
            {step: 0.1 * (i + 1) for step in range(9)},
        )
        for i in range(8)
    ]
    config = {"lr": 0.02, "opt": "sgd", "layers": [64]}
    far_behind = Trial(8, config, "running", None, {step: 50.0 for step in range(9)})
    ahead = Trial(8, config, "running", None, {step: 0.01 for step in range(9)})
    et = spec.early_terminate
    assert pruned(spec.parameters, runs, far_behind, goal="minimize", early_terminate=et)
    assert not pruned(spec.parameters, runs, ahead, goal="minimize", early_terminate=et)
