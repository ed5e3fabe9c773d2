"""What the hooks share: which logged values are numbers, and run= against init
arguments."""

from __future__ import annotations

import numpy as np
import pytest

from whirr.integrations._common import RunHandle, numbers, scalars


def test_only_single_numbers_are_logged() -> None:
    values = {
        "f": 0.5,
        "i": 3,
        "b": True,
        "np": np.float32(0.25),
        "zero_d": np.array(2.0),
        "vector": np.array([1.0, 2.0]),
        "text": "adamw",
        "none": None,
        "list": [1, 2],
    }
    assert numbers(values) == {"f": 0.5, "i": 3, "b": 1, "np": 0.25, "zero_d": 2.0}


def test_config_values_keep_text_and_lists() -> None:
    assert scalars({"a": None, "b": "x", "c": np.int64(4), "d": [1, "y"], "e": {1: 2}}) == {
        "a": None,
        "b": "x",
        "c": 4,
        "d": [1, "y"],
        "e": "{1: 2}",
    }


def test_a_given_run_takes_no_init_arguments() -> None:
    with pytest.raises(TypeError, match=r"either run= or whirr.init\(\) arguments.*'name'"):
        RunHandle(object(), None, {"name": "x"})
