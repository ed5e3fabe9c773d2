"""Ablation planning and values: paired seeds, templating, typed key=value, the fold."""

from __future__ import annotations

from pathlib import Path

import pytest

from whirr.ablations.plan import cells, render
from whirr.ablations.values import parse_assignments
from whirr.services.errors import InvalidRequest


def test_every_condition_of_a_replicate_gets_the_same_seed() -> None:
    planned = cells(
        ablation="s",
        conditions={"baseline": {"t": 0.7}, "cold": {"t": 0.0}},
        seed_base=100,
        replicates=2,
        template=["python", "e.py", "--seed={{seed}}", "--cfg", "{{cfg_path}}"],
        cfg_path=lambda c, r: f"/cfg/{c}-{r}.json",
    )
    assert [(c.condition, c.replicate, c.seed) for c in planned] == [
        ("baseline", 0, 100),
        ("cold", 0, 100),
        ("baseline", 1, 101),
        ("cold", 1, 101),
    ]
    assert planned[1].argv == ["python", "e.py", "--seed=100", "--cfg", "/cfg/cold-0.json"]
    assert planned[1].config == {
        "t": 0.0,
        "__ablate__": {"ablation": "s", "condition": "cold", "replicate": 0, "seed": 100},
    }


def test_cells_already_done_are_skipped() -> None:
    planned = cells(
        ablation="s",
        conditions={"baseline": {}, "d": {}},
        seed_base=0,
        replicates=2,
        template=["x"],
        cfg_path=lambda c, r: "p",
        skip=frozenset({("baseline", 0), ("d", 0)}),
    )
    assert [c.key for c in planned] == [("baseline", 1), ("d", 1)]


def test_render_fills_every_occurrence() -> None:
    assert render(["{{seed}}-{{seed}}", "{{cfg_path}}"], 7, "c.json") == ["7-7", "c.json"]


def test_values_are_typed(tmp_path: Path) -> None:
    (tmp_path / "prompt.txt").write_text("Be terse.\n")
    values, files = parse_assignments(
        [
            "n=3",
            "lr=1e-3",
            "p=0.5",
            "flag=true",
            "off=False",
            "name=adam",
            "quoted='3'",
            "layers=[64,128]",
            "system=@prompt.txt",
            "empty=",
        ],
        tmp_path,
    )
    assert values == {
        "n": 3,
        "lr": 0.001,
        "p": 0.5,
        "flag": True,
        "off": False,
        "name": "adam",
        "quoted": "3",
        "layers": [64, 128],
        "system": "Be terse.\n",
        "empty": "",
    }
    assert files == {"system": "prompt.txt"}
    assert isinstance(values["n"], int) and isinstance(values["lr"], float)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["novalue"], "expected key=value, got 'novalue'"),
        (["=3"], "expected key=value, got '=3'"),
        (["a=1", "a=2"], "'a' is given twice"),
        (["s=@missing.txt"], "s: cannot read missing.txt: No such file or directory"),
    ],
)
def test_bad_values_say_why(args: list[str], message: str, tmp_path: Path) -> None:
    with pytest.raises(InvalidRequest, match=message):
        parse_assignments(args, tmp_path)
