"""Sweep files: what is accepted, and bad files rejected with the key and the line."""

from __future__ import annotations

import pytest

from whirr.sweeps import SweepFileError, parse_spec


def error_of(text: str, **kwargs: object) -> str:
    with pytest.raises(SweepFileError) as info:
        parse_spec(text, source="sweep.yaml", **kwargs)  # type: ignore[arg-type]
    return str(info.value)


def test_a_full_file_is_read() -> None:
    spec = parse_spec(
        "name: lr-sweep\nprogram: [python, train.py]\nmethod: random\nmax_runs: 4\nseed: 3\n"
        "metric: {name: acc, goal: max}\ntags: [nightly]\nsubmit: {priority: 5}\n"
        "parameters:\n  lr: {distribution: uniform, min: 0, max: 1}\n"
    )
    assert spec.name == "lr-sweep"
    assert spec.argv == ["python", "train.py"]
    assert (spec.method, spec.max_runs, spec.seed) == ("random", 4, 3)
    assert (spec.metric, spec.goal) == ("acc", "maximize")
    assert spec.tags == ["nightly"] and spec.submit == {"priority": 5}


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "sweep.yaml: the file is empty; it needs `program` and `parameters`"),
        ("program: [unclosed\n", "sweep.yaml, line 2: not valid YAML"),
        ("- a\n- b\n", "sweep.yaml, line 1: must be a mapping of `key: value` lines"),
        ("parameters: {x: [1]}\n", "sweep.yaml, line 1: missing `program`"),
        (
            "program: python t.py\nparamters: {x: [1]}\n",
            "sweep.yaml, line 2: paramters: unknown key (expected one of: name, program, method, "
            "max_runs, seed, metric, tags, submit, parameters, description, fail_fast, "
            "early_terminate, max_concurrent); did you mean 'parameters'?",
        ),
        (
            "program: python t.py\nparameters:\n  x: [1]\n  x: [2]\n",
            "sweep.yaml, line 4: parameters.x: appears twice",
        ),
        (
            'program: "python \'oops"\nparameters: {x: [1]}\n',
            "sweep.yaml, line 1: program: cannot split into arguments: No closing quotation",
        ),
        (
            "program: python t.py\nmethod: anneal\nparameters: {x: [1]}\n",
            "sweep.yaml, line 2: method: unknown method 'anneal' "
            "(expected one of: grid, random, bayes)",
        ),
        (
            "program: python t.py\nmethod: random\nparameters: {x: [1]}\n",
            "sweep.yaml, line 2: method: random sweeps need `max_runs`",
        ),
        (
            "program: python t.py\nmax_runs: 0\nparameters: {x: [1]}\n",
            "sweep.yaml, line 2: max_runs: must be an integer >= 1, not 0",
        ),
        (
            "program: python t.py\nparameters:\n  lr:\n    values: []\n",
            "sweep.yaml, line 4: parameters.lr.values: must be a non-empty list",
        ),
        (
            "program: python t.py\nparameters:\n  lr:\n    distribution: uniform\n    min: 0.1\n",
            "sweep.yaml, line 4: parameters.lr: a uniform distribution needs `max`",
        ),
        (
            "program: python t.py\nmethod: random\nmax_runs: 2\nparameters:\n  lr:\n"
            "    distribution: log_uniform\n    min: 0\n    max: 1\n",
            "sweep.yaml, line 7: parameters.lr.min: log_uniform needs min > 0",
        ),
        (
            "program: python t.py\nmethod: random\nmax_runs: 2\nparameters:\n  lr:\n"
            "    distribution: normal\n    min: 0\n    max: 1\n",
            "sweep.yaml, line 6: parameters.lr.distribution: unknown distribution 'normal' "
            "(expected one of: uniform, log_uniform, int_uniform, categorical)",
        ),
        (
            "program: python t.py\nmethod: random\nmax_runs: 2\nparameters:\n  n:\n"
            "    distribution: int_uniform\n    min: 1.5\n    max: 4\n",
            "sweep.yaml, line 7: parameters.n.min: must be an integer, not 1.5",
        ),
        (
            "program: python t.py\nmethod: random\nmax_runs: 2\nparameters:\n  lr:\n"
            "    distribution: uniform\n    min: 2\n    max: 1\n",
            "sweep.yaml, line 7: parameters.lr.min: min (2) is above max (1)",
        ),
        (
            "program: python t.py\nparameters:\n  lr:\n    distribution: uniform\n    min: 0\n"
            "    max: 1\n",
            "sweep.yaml, line 4: parameters.lr: a grid sweep needs a list of `values`",
        ),
        (
            "program: python t.py\nparameters:\n  lr:\n    values: [1]\n    valeus: [2]\n",
            "sweep.yaml, line 5: parameters.lr.valeus: unknown key",
        ),
        (
            "program: python t.py\nparameters:\n  lr: [.nan]\n",
            "sweep.yaml, line 3: parameters.lr: nan is not a usable value",
        ),
        (
            "program: python t.py\nname: 'my sweep'\nparameters: {x: [1]}\n",
            "sweep.yaml, line 2: name: 'my sweep' is not a usable name",
        ),
        (
            "program: python t.py\nparameters: {}\n",
            "sweep.yaml, line 2: parameters: give at least one parameter",
        ),
        (
            "program: python t.py\nmetric: {name: loss, goal: down}\nparameters: {x: [1]}\n",
            "sweep.yaml, line 2: metric.goal: must be minimize or maximize, not 'down'",
        ),
    ],
)
def test_bad_files_say_which_key_and_which_line(text: str, message: str) -> None:
    assert error_of(text).startswith(message)


def test_unknown_submit_options_are_named() -> None:
    text = "program: python t.py\nsubmit:\n  priority: 1\n  gpu: 2\nparameters: {x: [1]}\n"
    assert error_of(text, submit_options=["priority", "max_attempts"]).startswith(
        "sweep.yaml, line 4: submit.gpu: unknown key (expected one of: priority, max_attempts)"
    )
